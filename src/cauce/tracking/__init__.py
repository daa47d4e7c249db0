"""Experiment tracking: experiments, runs, metrics, params, tags, artifacts, inputs, sweeps."""
