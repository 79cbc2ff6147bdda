"""Telemetry: logging, metrics and tracing setup (leaf package, usable from anywhere)."""
