"""What the machine is doing: /proc/stat windows, the noise gate, CPU time of process trees.

Linux only. Jiffies are clock ticks (os.sysconf("SC_CLK_TCK"), normally 100 per second), the
unit of both /proc/stat and /proc/<pid>/stat, so the two can be subtracted.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "CLK_TCK",
    "CpuSnapshot",
    "CpuWindow",
    "GateResult",
    "affinity_of",
    "machine_info",
    "read_cpu",
    "tree_cpu_ticks",
    "tree_pids",
    "wait_for_quiet",
]

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    """One read of /proc/stat: per line ("cpu", "cpu0", ...) the ten jiffy counters."""

    at: float
    lines: dict[str, tuple[int, ...]]


def read_cpu() -> CpuSnapshot:
    """Read /proc/stat now."""
    lines: dict[str, tuple[int, ...]] = {}
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            name, *values = line.split()
            counters = tuple(int(v) for v in values[:10])
            lines[name] = counters + (0,) * (10 - len(counters))
    return CpuSnapshot(time.monotonic(), lines)


@dataclass(frozen=True)
class CpuWindow:
    """CPU use between two /proc/stat reads.

    `busy_pct` counts user+nice+system+irq+softirq over all time (steal excluded), per CPU and
    for the whole machine ("cpu": 100 % = every core busy). `busy_ticks` is that busy time over
    all CPUs: processes' utime+stime include the softirq work (loopback networking) done in
    their context, so only the sum with irq+softirq compares with their CPU time.
    """

    seconds: float
    busy_pct: dict[str, float]
    steal_pct: dict[str, float]
    busy_ticks: int
    ticks_per_cpu: float

    def foreign_cores(self, accounted_ticks: float) -> float:
        """Cores' worth of user+system time not explained by `accounted_ticks` (ours)."""
        if self.ticks_per_cpu <= 0:
            return 0.0
        return max(0.0, (self.busy_ticks - accounted_ticks) / self.ticks_per_cpu)

    def as_dict(self) -> dict[str, object]:
        """For the raw results file."""
        return {k: v for k, v in asdict(self).items() if k not in ("busy_ticks", "ticks_per_cpu")}

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot) -> CpuWindow:
        """The window from `before` to `after`."""
        busy: dict[str, float] = {}
        steal: dict[str, float] = {}
        busy_ticks = 0
        ticks_per_cpu = 0.0
        ncpu = max(1, sum(1 for name in after.lines if name != "cpu"))
        for name, now in after.lines.items():
            then = before.lines.get(name)
            if then is None:
                continue
            d = [a - b for a, b in zip(now, then, strict=True)]
            user, nice, system, _idle, _iowait, irq, softirq, stolen = d[:8]
            total = sum(d[:8])
            if total <= 0:
                busy[name], steal[name] = 0.0, 0.0
                continue
            busy[name] = round(100.0 * (user + nice + system + irq + softirq) / total, 1)
            steal[name] = round(100.0 * stolen / total, 1)
            if name == "cpu":
                busy_ticks = user + nice + system + irq + softirq
                ticks_per_cpu = total / ncpu
        return cls(
            seconds=round(after.at - before.at, 3),
            busy_pct=busy,
            steal_pct=steal,
            busy_ticks=busy_ticks,
            ticks_per_cpu=ticks_per_cpu,
        )


@dataclass(frozen=True)
class GateResult:
    """How the noise gate before one run went."""

    quiet: bool
    waited_s: float
    busy_pct: float
    steal_pct: float


def wait_for_quiet(
    *, max_busy_pct: float, max_steal_pct: float, timeout_s: float, window_s: float = 1.0
) -> GateResult:
    """Wait (at most `timeout_s`) for a `window_s` window with low machine busy % and steal.

    Our own servers are idle between runs, so what the gate sees is other people's work.
    Returns the last window measured; `quiet` is False if the bound ran out first.
    """
    started = time.monotonic()
    while True:
        before = read_cpu()
        time.sleep(window_s)
        window = CpuWindow.between(before, read_cpu())
        busy, steal = window.busy_pct.get("cpu", 0.0), window.steal_pct.get("cpu", 0.0)
        waited = time.monotonic() - started
        if busy <= max_busy_pct and steal <= max_steal_pct:
            return GateResult(True, round(waited, 1), busy, steal)
        if waited >= timeout_s:
            return GateResult(False, round(waited, 1), busy, steal)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def tree_pids(root: int) -> list[int]:
    """`root` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_cpu_ticks(root: int) -> int:
    """utime+stime (clock ticks) of `root` and its live descendants, all threads included."""
    total = 0
    for pid in tree_pids(root):
        fields = _stat_fields(pid)
        if fields is not None:
            # After the command name: state is index 0, utime index 11, stime index 12.
            total += int(fields[11]) + int(fields[12])
    return total


def affinity_of(pid: int) -> str | None:
    """The CPUs `pid` may run on (Cpus_allowed_list), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine_info() -> dict[str, object]:
    """What the raw results file says about the machine."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": os.getloadavg(),
        "clk_tck": CLK_TCK,
    }
