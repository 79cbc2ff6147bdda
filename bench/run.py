#!/usr/bin/env python3
"""Benchmark runner: start targets, gate on a quiet machine, load them with wrk, report.

    .venv/bin/python bench/run.py --list
    .venv/bin/python bench/run.py core                     # the official run (~25 min)
    .venv/bin/python bench/run.py core -d 3 --warmup 1 --reps 1 --pin pinned   # smoke
    .venv/bin/python bench/run.py startup -n 5

Method (shared/BENCHMARKING.md): server pinned to core 0 and wrk to core 1 (main table), then
unpinned (check); each shape is a warm-up then a measurement; targets alternate A B C A B C;
before each run the noise gate waits (bounded) for a quiet machine; each run records machine
busy % and steal and CPU time not explained by the server and wrk, and a disturbed run is
rerun. Raw results go to bench/results/<timestamp>-<scenario>.json (+ .md with the tables and
a folder with server logs and the wrk scripts). Runs by hand only: never from CI or pytest.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import functools
import json
import shlex
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import CLK_TCK, CpuWindow, machine_info, read_cpu, wait_for_quiet
from bench.report import load_tables, startup_table
from bench.scenarios import EXAMPLE, REGISTRY, ROOT, VENV_BIN, ZENML_VENV_BIN, Context
from bench.service import base_env
from bench.targets import Server, ServerError, stop_all
from bench.wrk import Shape, WrkError, run_wrk

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.scenarios import Scenario
    from bench.targets import Target

RESULTS = ROOT / "bench" / "results"
SERVER_CPU, WRK_CPU = 0, 1


# -- options -------------------------------------------------------------------------------


def _seconds(text: str) -> float:
    return float(text[:-1]) if text.endswith("s") else float(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", nargs="?", help="a scenario name (see --list)")
    p.add_argument("--list", action="store_true", help="list scenarios and exit")
    p.add_argument("--render", type=Path, help="print the tables of a raw results file again")
    p.add_argument("--targets", help="comma-separated target names to keep (default: all)")
    p.add_argument("--shapes", help="comma-separated shape names (default: the scenario's)")
    p.add_argument("--pin", choices=("both", "pinned", "unpinned"), default="both")
    p.add_argument("--reps", type=int, default=3, help="repetitions per target (default 3)")
    p.add_argument("-d", "--duration", type=_seconds, help="measurement per run (default 10s)")
    p.add_argument("--warmup", type=_seconds, help="warm-up before each run (default 2s)")
    p.add_argument("-n", "--startup-n", type=int, default=5, help="startups per target")
    p.add_argument("--snapshot-id", help="reuse this snapshot instead of snapshotting again")
    p.add_argument("--zenml-deployment-id", help="reuse this ZenML deployment record")
    p.add_argument("--no-zenml", action="store_true", help="leave ZenML's own server out")
    gate = p.add_argument_group("noise gate")
    gate.add_argument("--gate-busy", type=float, default=10.0, help="max machine busy %% (10)")
    gate.add_argument("--gate-steal", type=float, default=3.0, help="max steal %% (3)")
    gate.add_argument("--gate-timeout", type=_seconds, default=60.0, help="max wait (60s)")
    gate.add_argument(
        "--max-foreign",
        type=float,
        default=0.25,
        help="cores of CPU time not ours during a run before it counts as disturbed (0.25)",
    )
    gate.add_argument("--max-steal", type=float, default=3.0, help="steal %% during a run (3)")
    gate.add_argument("--max-reruns", type=int, default=2, help="reruns of a disturbed run (2)")
    return p.parse_args(argv)


# -- preparation ---------------------------------------------------------------------------


def _last_line(command: list[str], what: str) -> str:
    print(f"bench: {what}: {shlex.join(command)}", flush=True)
    done = subprocess.run(
        command, cwd=ROOT, env=base_env(), capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        sys.exit(f"bench: {what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1].strip()


def prepare(scenario: Scenario, args: argparse.Namespace) -> Context:
    """Snapshot the example and create ZenML's deployment record, as the scenario needs."""
    ctx = Context()
    if "snapshot" in scenario.needs:
        ctx.snapshot_id = args.snapshot_id or _last_line(
            [str(VENV_BIN / "zenml-serving"), "snapshot", EXAMPLE], "snapshotting the example"
        )
    if "zenml_deployment" in scenario.needs and not args.no_zenml:
        if args.zenml_deployment_id:
            ctx.zenml_deployment_id = args.zenml_deployment_id
        elif not (ZENML_VENV_BIN / "python").exists():
            ctx.notes.append(
                "ZenML's own server left out: bench/.venv-zenml is missing (see bench/README.md)"
            )
        else:
            ctx.zenml_deployment_id = _last_line(
                [
                    str(ZENML_VENV_BIN / "python"),
                    str(ROOT / "bench" / "zenml_deployment.py"),
                    str(ctx.snapshot_id),
                ],
                "creating ZenML's deployment record",
            )
    return ctx


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("zenml", "litestar", "granian", "uvloop", "msgspec", "pydantic"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    for name in ("fastapi", "uvicorn"):  # ZenML's server venv
        hits = sorted(ZENML_VENV_BIN.parent.glob(f"lib/python*/site-packages/{name}-*.dist-info"))
        found[f"zenml-venv {name}"] = hits[-1].name.split("-")[1] if hits else None
    return found


# -- one measurement -----------------------------------------------------------------------


@dataclasses.dataclass
class Session:
    """Everything one invocation of run.py shares: options, folders, the raw results."""

    args: argparse.Namespace
    scenario: Scenario
    ctx: Context
    stamp: str
    workdir: Path
    runs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    shape_labels: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    servers: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def gate(self) -> dict[str, Any]:
        """Wait for a quiet machine (bounded) and say how it went."""
        g = wait_for_quiet(
            max_busy_pct=self.args.gate_busy,
            max_steal_pct=self.args.gate_steal,
            timeout_s=self.args.gate_timeout,
        )
        return dataclasses.asdict(g)

    def disturbance(
        self, gate: dict[str, Any], window: CpuWindow, accounted_ticks: float
    ) -> tuple[float, list[str]]:
        """Cores of foreign CPU during the run, and why the run counts as disturbed (if so)."""
        foreign = round(window.foreign_cores(accounted_ticks), 3)
        reasons = []
        if not gate["quiet"]:
            reasons.append(f"gate timed out (busy {gate['busy_pct']}%)")
        if foreign > self.args.max_foreign:
            reasons.append(f"foreign CPU {foreign:.2f} cores")
        if window.steal_pct.get("cpu", 0.0) > self.args.max_steal:
            reasons.append(f"steal {window.steal_pct['cpu']}%")
        return foreign, reasons


def effective_shape(session: Session, target: Target, shape: Shape) -> Shape:
    """The scenario's shape, then -d/--warmup, then the target's own overrides.

    A target's overrides win: they exist because that target cannot be measured otherwise
    (ZenML's server needs ~1 s per call). Leave it out of smoke runs with --targets/--no-zenml.
    """
    if session.args.duration is not None:
        shape = dataclasses.replace(shape, duration_s=session.args.duration)
    if session.args.warmup is not None:
        shape = dataclasses.replace(shape, warmup_s=session.args.warmup)
    return dataclasses.replace(shape, **target.shape_overrides.get(shape.name, {}))


def measure_load(
    session: Session, server: Server, shape: Shape, pin: str, rep: int
) -> dict[str, Any]:
    """Warm up, then one measured wrk run, with the noise gate and the CPU accounting."""
    scenario, target = session.scenario, server.target
    shape = effective_shape(session, target, shape)
    session.shape_labels[target.name, shape.name] = shape.describe()
    wrk_cpu = WRK_CPU if pin == "pinned" else None
    tag = f"{pin}-{shape.name}-{target.name}-{rep}"
    gate = session.gate()
    if shape.warmup_s > 0:
        run_wrk(
            server.base_url,
            scenario.request,
            shape,
            duration_s=shape.warmup_s,
            workdir=session.workdir,
            tag=tag + "-warmup",
            cpu=wrk_cpu,
        )
    cpu_before, server_before = read_cpu(), server.cpu_ticks()
    result = run_wrk(
        server.base_url,
        scenario.request,
        shape,
        duration_s=shape.duration_s,
        workdir=session.workdir,
        tag=tag,
        cpu=wrk_cpu,
    )
    server_ticks = server.cpu_ticks() - server_before
    window = CpuWindow.between(cpu_before, read_cpu())
    foreign, reasons = session.disturbance(gate, window, server_ticks + result.wrk_cpu_s * CLK_TCK)
    failures = []
    if result.socket_errors:
        failures.append(f"{result.socket_errors} socket errors {result.errors}")
    if result.non_2xx and not scenario.expect_non_2xx:
        failures.append(f"{result.non_2xx} non-2xx {result.statuses}")
    if result.requests == 0:
        failures.append("no responses")
    return {
        "target": target.name,
        "pin": pin,
        "shape": shape.name,
        "shape_params": dataclasses.asdict(shape),
        "rep": rep,
        "gate": gate,
        "cpu": {**window.as_dict(), "foreign_cores": foreign},
        "wrk": result.as_dict(),
        "server_cpu_s": round(server_ticks / CLK_TCK, 3),
        "server_cpu_ms_per_req": (
            round(server_ticks / CLK_TCK / result.requests * 1000, 4) if result.requests else None
        ),
        "disturbed": bool(reasons),
        "disturbed_reasons": reasons,
        "failures": failures,
    }


def _print_run(run: dict[str, Any]) -> None:
    w, lat = run["wrk"], run["wrk"]["latency_us"]
    flag = ""
    if run["disturbed"]:
        flag += f"  DISTURBED: {'; '.join(run['disturbed_reasons'])}"
    if run["failures"]:
        flag += f"  FAILED: {'; '.join(run['failures'])}"
    print(
        f"  {run['pin']:8} {run['shape']:10} {run['target']:18} rep {run['rep']} "
        f"{w['rps']:>9.1f} req/s  p50 {lat['p50'] / 1000:7.2f} ms  p99 {lat['p99'] / 1000:7.2f} ms"
        f"  cpu {run['server_cpu_ms_per_req'] or 0:.3f} ms/req  busy "
        f"{run['cpu']['busy_pct'].get('cpu', 0):.0f}% steal "
        f"{run['cpu']['steal_pct'].get('cpu', 0):.1f}% foreign {run['cpu']['foreign_cores']:.2f}"
        f"{flag}",
        flush=True,
    )


def with_reruns(session: Session, measure: Callable[[], dict[str, Any]]) -> None:
    """Measure; rerun a disturbed measurement up to --max-reruns times; keep the last."""
    for attempt in range(1 + session.args.max_reruns):
        run = measure()
        run["attempt"] = attempt
        session.runs.append(run)
        if "wrk" in run:
            _print_run(run)
        if not run["disturbed"] or attempt == session.args.max_reruns:
            run["kept"] = True
            return
        run["kept"] = False
        print("  ... disturbed, rerunning", flush=True)


def start_servers(session: Session, targets: list[Target], pin: str) -> dict[str, Server]:
    """Start every target (pinned to the server core if asked) and wait until all are ready."""
    cpu = SERVER_CPU if pin == "pinned" else None
    servers = {
        t.name: Server(
            t,
            base_env=base_env(),
            cwd=ROOT,
            log_path=session.workdir / f"{t.name}.log",
            cpu=cpu,
        )
        for t in targets
    }
    for server in servers.values():
        took = server.wait_ready()
        print(f"bench: {server.target.name} ready on {server.base_url} ({took:.1f} s)", flush=True)
    return servers


def run_load(session: Session, targets: list[Target], pins: list[str]) -> None:
    """The `load` kind: shapes x repetitions x targets (alternating), per pin mode."""
    shapes = list(session.scenario.shapes)
    if session.args.shapes:
        keep = session.args.shapes.split(",")
        shapes = [s for s in shapes if s.name in keep]
    for pin in pins:
        print(f"bench: === {pin} ===", flush=True)
        servers = start_servers(session, targets, pin)
        session.servers.append({"pin": pin, **{n: s.describe() for n, s in servers.items()}})
        try:
            for shape in shapes:
                for rep in range(session.args.reps):
                    for server in servers.values():
                        with_reruns(
                            session,
                            functools.partial(measure_load, session, server, shape, pin, rep),
                        )
        finally:
            for server in servers.values():
                server.stop()


def measure_startup(session: Session, target: Target, pin: str, rep: int) -> dict[str, Any]:
    """Start `target` once, time start to first 200 on its readiness URL, stop it."""
    gate = session.gate()
    before = read_cpu()
    server = Server(
        target,
        base_env=base_env(),
        cwd=ROOT,
        log_path=session.workdir / f"{target.name}.log",
        cpu=SERVER_CPU if pin == "pinned" else None,
    )
    try:
        ready = server.wait_ready(poll_s=0.02)
        cpu_ticks = server.cpu_ticks()
    finally:
        server.stop()
    window = CpuWindow.between(before, read_cpu())
    foreign, reasons = session.disturbance(gate, window, cpu_ticks)
    print(
        f"  {pin:8} {target.name:18} #{rep} ready in {ready:6.2f} s, "
        f"{cpu_ticks / CLK_TCK:.2f} CPU s, busy {window.busy_pct.get('cpu', 0):.0f}%"
        + (f"  DISTURBED: {'; '.join(reasons)}" if reasons else ""),
        flush=True,
    )
    return {
        "target": target.name,
        "pin": pin,
        "rep": rep,
        "gate": gate,
        "cpu": {**window.as_dict(), "foreign_cores": foreign},
        "ready_after_s": round(ready, 3),
        "cpu_s_to_ready": round(cpu_ticks / CLK_TCK, 2),
        "disturbed": bool(reasons),
        "disturbed_reasons": reasons,
        "failures": [],
    }


def run_startup(session: Session, targets: list[Target], pins: list[str]) -> None:
    """The `startup` kind: process start to first 200 on the readiness URL, alternating."""
    for pin in pins:
        print(f"bench: === startup, {pin} ===", flush=True)
        for rep in range(session.args.startup_n):
            for target in targets:
                with_reruns(session, functools.partial(measure_startup, session, target, pin, rep))


MEASURES: dict[str, Callable[[Session, list[Target], list[str]], None]] = {
    "load": run_load,
    "startup": run_startup,
}


# -- output --------------------------------------------------------------------------------


def render(session: Session, command: str, targets: list[Target]) -> str:
    """The markdown report of this run."""
    scenario = session.scenario
    kept = [r for r in session.runs if r.get("kept") and "target" in r]
    busy = sorted(float(r["cpu"]["busy_pct"].get("cpu", 0)) for r in kept)
    steal = [float(r["cpu"]["steal_pct"].get("cpu", 0)) for r in kept]
    lines = [
        f"### {scenario.name}: {scenario.description}",
        "",
        f"- command: `{command}`",
        f"- results: `bench/results/{session.stamp}-{scenario.name}.json`",
        f"- machine: {machine_info()['cpus']} CPUs ({machine_info()['cpu_model']}), "
        f"busy during runs {busy[0] if busy else 0:.0f}-{busy[-1] if busy else 0:.0f}% "
        f"of the machine, steal max {max(steal, default=0):.1f}%; "
        f"{sum(1 for r in kept if r['disturbed'])} of {len(kept)} kept runs still disturbed "
        f"after reruns, {sum(1 for r in session.runs if r.get('kept') is False and 'target' in r)}"
        " reruns",
    ]
    lines += [f"- note: {n}" for n in session.ctx.notes]
    lines.append("- targets:")
    lines += [f"  - `{t.name}`: {t.description}; `{t.command_line()}`" for t in targets]
    lines.append("")
    if scenario.kind == "load":
        lines.append(
            load_tables(
                session.runs,
                baseline=scenario.baseline,
                extra_ratios=scenario.extra_ratios,
                shape_labels=session.shape_labels,
            )
        )
    elif scenario.kind == "startup":
        lines.append(startup_table(session.runs, baseline=scenario.baseline))
    failures = [r for r in kept if r.get("failures")]
    if failures:
        lines.append("Failed runs (errors or unexpected statuses):")
        lines += [
            f"- {r['pin']} {r.get('shape', '')} {r['target']} rep {r['rep']}: "
            f"{'; '.join(r['failures'])}"
            for r in failures
        ]
    return "\n".join(lines) + "\n"


def rerender(raw: dict[str, Any]) -> str:
    """The tables of a raw results file (written by this or an earlier version of run.py)."""
    scenario = REGISTRY[raw["scenario"]]
    runs = raw["runs"]
    if scenario.kind == "startup":
        return startup_table(runs, baseline=scenario.baseline)
    labels = {
        (r["target"], r["shape"]): Shape(**r["shape_params"]).describe()
        for r in runs
        if "shape_params" in r
    }
    return load_tables(
        runs, baseline=scenario.baseline, extra_ratios=scenario.extra_ratios, shape_labels=labels
    )


def main(argv: list[str]) -> int:
    """Run one scenario and report."""
    args = parse_args(argv)
    if args.render:
        print(rerender(json.loads(args.render.read_text())))
        return 0
    if args.list or not args.scenario:
        for s in REGISTRY.values():
            print(f"{s.name:12} [{s.kind}] {s.description} (baseline: {s.baseline})")
        return 0 if args.list else 2
    scenario = REGISTRY.get(args.scenario)
    if scenario is None:
        print(f"bench: unknown scenario {args.scenario!r}; try --list", file=sys.stderr)
        return 2

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    atexit.register(stop_all)

    command = shlex.join([".venv/bin/python", "bench/run.py", *argv])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS / f"{stamp}-{scenario.name}"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = prepare(scenario, args)
    targets = scenario.targets(ctx)
    if args.targets:
        keep = args.targets.split(",")
        targets = [t for t in targets if t.name in keep]
    pins = ["pinned", "unpinned"] if args.pin == "both" else [args.pin]
    session = Session(args=args, scenario=scenario, ctx=ctx, stamp=stamp, workdir=workdir)
    started = time.time()
    status = "completed"
    try:
        MEASURES[scenario.kind](session, targets, pins)
    except KeyboardInterrupt:
        status = "interrupted"
        print("bench: interrupted; stopping servers, writing what was measured", flush=True)
    except (ServerError, WrkError) as exc:
        status = f"failed: {exc}"
        print(f"bench: {exc}", file=sys.stderr, flush=True)
    finally:
        stop_all()
    report = render(session, command, targets)
    raw = {
        "scenario": scenario.name,
        "status": status,
        "command": command,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "machine": machine_info(),
        "versions": _versions(),
        "context": dataclasses.asdict(ctx),
        "options": vars(args),
        "targets": [
            {"name": t.name, "command": t.command_line(), "description": t.description}
            for t in targets
        ],
        "servers": session.servers,
        "runs": session.runs,
    }
    out = RESULTS / f"{stamp}-{scenario.name}.json"
    out.write_text(json.dumps(raw, indent=1, default=str))
    (RESULTS / f"{stamp}-{scenario.name}.md").write_text(report)
    print()
    print(report)
    print(f"bench: {status}; raw results in {out.relative_to(ROOT)}")
    return 0 if status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
