"""Serving: endpoints, deployments, the router, scoring protocols, the collector, batching
and progressive rollouts."""
