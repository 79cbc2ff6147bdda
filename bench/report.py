"""Turn the raw runs of one benchmark into markdown tables: medians, min-max, paired ratios."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["load_tables", "startup_table"]

PIN_TITLES = {
    "pinned": "pinned: server on core 0, wrk on core 1 (main table)",
    "unpinned": "unpinned: no taskset (check)",
}


def _fmt(value: float, digits: int) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def spread(values: Sequence[float], digits: int = 2) -> str:
    """`median (min-max)` of `values`, or just the value when there is one."""
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return _fmt(med, digits)
    return f"{_fmt(med, digits)} ({_fmt(min(values), digits)}-{_fmt(max(values), digits)})"


def _metric(run: dict[str, Any], name: str) -> float:
    wrk = run["wrk"]
    if name == "rps":
        return float(wrk["rps"])
    if name == "cpu_ms":
        return float(run["server_cpu_ms_per_req"] or 0.0)
    return float(wrk["latency_us"][name]) / 1000.0


def _kept(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if r.get("kept")]


def load_tables(
    runs: list[dict[str, Any]],
    *,
    baseline: str,
    extra_ratios: Sequence[tuple[str, str]],
    shape_labels: dict[tuple[str, str], str],
) -> str:
    """Markdown: one table per pin mode, then paired ratios vs the baseline (and extras)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    order: list[str] = []
    for run in _kept(runs):
        groups[run["pin"], run["shape"], run["target"]].append(run)
        if run["target"] not in order:
            order.append(run["target"])
    pins = [p for p in ("pinned", "unpinned") if any(k[0] == p for k in groups)]
    shapes = list(dict.fromkeys(k[1] for k in groups))
    out: list[str] = []
    for pin in pins:
        out.append(f"#### {PIN_TITLES[pin]}\n")
        out.append(
            "| target | shape (wrk) | req/s | p50 ms | p90 ms | p99 ms | server CPU ms/req "
            "| errors / non-2xx | busy % / steal % | disturbed |"
        )
        out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
        for shape in shapes:
            for target in order:
                group = sorted(groups.get((pin, shape, target), []), key=lambda r: r["rep"])
                if not group:
                    continue
                errors = sum(_socket_errors(r) for r in group)
                non_2xx = sum(r["wrk"]["non_2xx"] for r in group)
                busy = [float(r["cpu"]["busy_pct"].get("cpu", 0.0)) for r in group]
                steal = [float(r["cpu"]["steal_pct"].get("cpu", 0.0)) for r in group]
                disturbed = sum(1 for r in group if r["disturbed"])
                out.append(
                    f"| {target} | {shape} `{shape_labels.get((target, shape), '')}` "
                    f"| {spread([_metric(r, 'rps') for r in group], 1)} "
                    f"| {spread([_metric(r, 'p50') for r in group])} "
                    f"| {spread([_metric(r, 'p90') for r in group])} "
                    f"| {spread([_metric(r, 'p99') for r in group])} "
                    f"| {spread([_metric(r, 'cpu_ms') for r in group], 3)} "
                    f"| {errors} / {non_2xx} "
                    f"| {statistics.median(busy):.0f} / {max(steal):.1f} "
                    f"| {disturbed}/{len(group)} |"
                )
        out.append("")
        pairs = [(t, baseline) for t in order if t != baseline and _has(groups, pin, baseline)]
        pairs += [p for p in extra_ratios if p[0] in order and p[1] in order]
        if pairs:
            out.append(
                "Ratios, paired by repetition (run i of A / run i of B, A and B measured "
                "back to back): median (min-max)\n"
            )
            out.append("| A vs B | shape | p50 A/B | p99 A/B | req/s A/B | server CPU/req A/B |")
            out.append("| --- | --- | ---: | ---: | ---: | ---: |")
            for a, b in pairs:
                for shape in shapes:
                    ga = _by_rep(groups.get((pin, shape, a), []))
                    gb = _by_rep(groups.get((pin, shape, b), []))
                    reps = sorted(set(ga) & set(gb))
                    if not reps:
                        continue

                    def ratio(
                        name: str, ga: Any = ga, gb: Any = gb, reps: Any = reps
                    ) -> list[float]:
                        return [_metric(ga[i], name) / _metric(gb[i], name) for i in reps]

                    out.append(
                        f"| {a} vs {b} | {shape} | {spread(ratio('p50'))}x "
                        f"| {spread(ratio('p99'))}x | {spread(ratio('rps'), 3)}x "
                        f"| {spread(ratio('cpu_ms'))}x |"
                    )
            out.append("")
    return "\n".join(out)


def _socket_errors(run: dict[str, Any]) -> int:
    return sum(n for kind, n in run["wrk"]["errors"].items() if kind != "status")


def _has(groups: dict[tuple[str, str, str], Any], pin: str, target: str) -> bool:
    return any(k[0] == pin and k[2] == target for k in groups)


def _by_rep(group: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {int(r["rep"]): r for r in group}


def startup_table(runs: list[dict[str, Any]], *, baseline: str) -> str:
    """Markdown: startup-to-ready per target and pin mode, with ratios vs the baseline."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in _kept(runs):
        groups[run["pin"], run["target"]].append(run)
    out = [
        "| target | pin | n | start to first 200 s | CPU s to ready | vs "
        f"{baseline} (median) | busy % / steal % |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]

    def value(run: dict[str, Any]) -> float:
        return float(run["ready_after_s"])

    for (pin, target), group in groups.items():
        ref = groups.get((pin, baseline))
        ratio = (
            f"{statistics.median(map(value, group)) / statistics.median(map(value, ref)):.2f}x"
            if ref
            else "-"
        )
        busy = [float(r["cpu"]["busy_pct"].get("cpu", 0.0)) for r in group]
        steal = [float(r["cpu"]["steal_pct"].get("cpu", 0.0)) for r in group]
        out.append(
            f"| {target} | {pin} | {len(group)} | {spread([value(r) for r in group])} "
            f"| {spread([float(r['cpu_s_to_ready']) for r in group])} | {ratio} "
            f"| {statistics.median(busy):.0f} / {max(steal):.1f} |"
        )
    return "\n".join(out) + "\n"
