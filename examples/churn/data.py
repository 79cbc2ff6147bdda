"""Synthetic customer rows (no download): the features and how churn depends on them."""

from __future__ import annotations

import numpy as np

FEATURES = ("tenure_months", "support_calls", "monthly_charges")


def customers(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`rows` customers and whether each churned; more support calls, more churn."""
    rng = np.random.default_rng(seed)
    tenure = rng.uniform(1, 72, rows)
    calls = rng.poisson(2.0, rows).astype(float)
    charges = rng.uniform(20, 120, rows)
    risk = 0.8 * calls - 0.06 * tenure + 0.02 * charges - 1.2
    churned = (risk + rng.normal(0, 0.5, rows) > 0).astype(int)
    return np.column_stack([tenure, calls, charges]), churned


def as_row(features: dict[str, float]) -> np.ndarray:
    """One request's features in the model's column order."""
    return np.array([[float(features[name]) for name in FEATURES]])
