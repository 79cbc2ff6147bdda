"""Sampling is a pure function of the invocation id and the rate, and hits the rate."""

from __future__ import annotations

import math
import random
import uuid

import pytest

from zenml_serving.capture import is_sampled, sampling_point

N = 20_000
SIGMAS = 5  # the ids are fixed, so this never flakes; 5 sd still catches a biased hash


def invocation_ids(n: int, seed: int = 20260101) -> list[str]:
    """`n` ids shaped like the service's (uuid4 strings), the same on every run."""
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


IDS = invocation_ids(N)


def tolerance(p: float, n: int) -> float:
    return SIGMAS * math.sqrt(p * (1 - p) / n)


class TestDeterminism:
    """One id always decides the same way, in this process and in any other."""

    def test_the_point_of_an_id_is_pinned(self) -> None:
        # A replayed invocation must decide as it did before a restart or an upgrade: changing
        # the hash changes these numbers and breaks replays.
        assert sampling_point("00000000-0000-4000-8000-000000000000") == 0.6435747445286841
        assert sampling_point("replay-me") == 0.14467394806180667

    def test_repeated_calls_agree(self) -> None:
        for invocation_id in IDS[:200]:
            assert is_sampled(invocation_id, 0.3) == is_sampled(invocation_id, 0.3)

    def test_points_are_in_the_unit_interval(self) -> None:
        points = [sampling_point(i) for i in IDS]
        assert all(0.0 <= p < 1.0 for p in points)

    @pytest.mark.parametrize("invocation_id", ["", "x", "é", *IDS[:5]])
    def test_rate_zero_never_and_rate_one_always(self, invocation_id: str) -> None:
        assert is_sampled(invocation_id, 0.0) is False
        assert is_sampled(invocation_id, 1.0) is True

    def test_decisions_nest_across_rates(self) -> None:
        rates = [0.0, 0.05, 0.1, 0.5, 0.9, 1.0]
        for invocation_id in IDS[:2000]:
            decisions = [is_sampled(invocation_id, r) for r in rates]
            assert decisions == sorted(decisions)  # once sampled, sampled at every higher rate


class TestObservedRate:
    """Over many ids the sampled fraction matches the rate within binomial error."""

    @pytest.mark.parametrize("rate", [0.01, 0.1, 0.25, 0.5, 0.9, 0.99])
    def test_fraction_sampled(self, rate: float) -> None:
        observed = sum(is_sampled(i, rate) for i in IDS) / N
        assert abs(observed - rate) <= tolerance(rate, N)

    def test_points_fill_every_decile(self) -> None:
        counts = [0] * 10
        for invocation_id in IDS:
            counts[int(sampling_point(invocation_id) * 10)] += 1
        expected, spread = N / 10, SIGMAS * math.sqrt(N * 0.1 * 0.9)
        assert all(abs(c - expected) <= spread for c in counts), counts

    def test_sequential_ids_are_not_correlated(self) -> None:
        sequential = [f"request-{i}" for i in range(N)]
        observed = sum(is_sampled(i, 0.1) for i in sequential) / N
        assert abs(observed - 0.1) <= tolerance(0.1, N)
