"""Baseline apps for bench/run.py: the same JSON in/out as `POST /invoke`, trivial work."""
