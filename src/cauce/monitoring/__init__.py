"""Monitoring: reference profiles, drift and quality metrics, signals, monitors, alerts."""
