"""Deterministic sampling: the decision is a pure function of the invocation id and the rate.

The id is hashed (BLAKE2b; its top 53 bits, exact in a float) to a point in [0, 1); the
invocation is sampled at rate `r` when its point is below `r`. So every step, span, log line
and artifact of one invocation agree, a replay of the same id decides the same way in any
process, and decisions nest: an invocation sampled at rate 0.1 is sampled at any higher rate.
"""

from __future__ import annotations

import hashlib

__all__ = ["is_sampled", "sampling_point"]

_BITS = 53  # a double holds 53 bits exactly, so the point is never rounded up to 1.0


def sampling_point(invocation_id: str) -> float:
    """The invocation's stable point in [0, 1), from the first 53 bits of BLAKE2b(id)."""
    digest = hashlib.blake2b(invocation_id.encode("utf-8"), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> (64 - _BITS)) / float(1 << _BITS)


def is_sampled(invocation_id: str, rate: float) -> bool:
    """True for a fraction `rate` of invocation ids: never at 0, always at 1."""
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    return sampling_point(invocation_id) < rate
