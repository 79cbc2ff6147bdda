"""Pipelines that exist only to pin down serving behaviour in tests."""
