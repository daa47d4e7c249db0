"""Automation: the agent that runs schedules and triggers (later: monitors and rollouts)."""
