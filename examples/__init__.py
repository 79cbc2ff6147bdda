"""Example pipelines served by the README and exercised by the tests (pure Python)."""
