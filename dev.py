#!/usr/bin/env python3
"""Developer entry point: the two commands the README promises, with only python3 installed.

    python3 dev.py serve   # install, snapshot the example pipeline into the local store, serve it
    python3 dev.py test    # install with test extras, then ruff, mypy and the whole pytest suite
    python3 dev.py lock    # after editing dependencies: re-resolve the lock, keeping other pins
    python3 dev.py lock --upgrade  # move every pin to today's newest allowed; show the changes

Both create `.venv/` in the repo on first use and install exactly the versions pinned in
requirements/dev.lock (one universal lock for every Python the project declares; ruff and mypy
pinned too), so the two commands give the same result next month. They reinstall only when
pyproject.toml or the lock changes.
The embedded default ZenML store (SQLite) lives in `.zenml-local/` (git-ignored). Anything after
`test` is passed to pytest (e.g. `python3 dev.py test -k wiring`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
EXAMPLE = "examples.text_pipeline:text_pipeline"
SUPPORTED = ((3, 10), (3, 15))
LOCK = ROOT / "requirements" / "dev.lock"
# The resolver that writes the lock; pinned so that a refresh is reproducible too.
UV = "uv==0.13.9"


def _check_python() -> None:
    low, high = SUPPORTED
    if not (low <= sys.version_info[:2] < high):
        sys.exit(f"dev.py: Python {low[0]}.{low[1]} to {high[0]}.{high[1] - 1} is required")


def _create_venv() -> None:
    if not PYTHON.exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)


def _ensure_venv(extras: str) -> None:
    """Create .venv and install the project (with `extras`) at the locked versions, unless
    already up to date."""
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + LOCK.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PYTHON.exists():
        return
    _create_venv()
    target = f".[{extras}]" if extras else "."
    print(f"dev.py: installing {target} into .venv from {LOCK.relative_to(ROOT)}", flush=True)
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-c",
            str(LOCK),
            "-e",
            target,
        ],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(digest)


def _pins(text: str) -> dict[str, str]:
    """`name -> version (marker)` of every pinned line of a lock."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, _, rest = line.partition("==")
            key = f"{name.strip()} ;{rest.partition(';')[2]}" if ";" in rest else name.strip()
            pins[key] = rest.partition(";")[0].strip()
    return pins


def lock(upgrade: bool) -> int:
    """Re-resolve the lock after pyproject.toml changed (other pins kept), or move every pin to
    the newest version pyproject.toml allows (`upgrade`); print what changed."""
    _create_venv()
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q", UV],
        check=True,
    )
    before = _pins(LOCK.read_text()) if LOCK.exists() else {}
    LOCK.parent.mkdir(exist_ok=True)
    code = subprocess.run(
        [
            str(BIN / "uv"),
            "pip",
            "compile",
            "pyproject.toml",
            "--extra",
            "test",
            "--extra",
            "examples",
            "--universal",
            "--python-version",
            f"{SUPPORTED[0][0]}.{SUPPORTED[0][1]}",
            *(["--upgrade"] if upgrade else []),
            "--quiet",
            "--custom-compile-command",
            "python3 dev.py lock",
            "-o",
            str(LOCK.relative_to(ROOT)),
        ],
        cwd=ROOT,
        check=False,
    ).returncode
    if code != 0:
        return code
    after = _pins(LOCK.read_text())
    changes = [
        f"  {name}: {before.get(name, '-')} -> {after.get(name, '-')}"
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]
    print("\n".join(["dev.py: lock changes:", *changes]) if changes else "dev.py: lock unchanged")
    return 0


def local_store_env() -> dict[str, str]:
    """This environment plus the embedded default store in the repo (what `serve` runs
    with; bench/ starts its servers with it too). Variables already set win."""
    env = dict(os.environ)
    env.setdefault("ZENML_CONFIG_PATH", str(ROOT / ".zenml-local" / "config"))
    env.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    env.setdefault("ZENML_LOGGING_VERBOSITY", "WARN")
    env.setdefault("ZENML_SERVING_SOURCE_ROOT", str(ROOT))
    return env


def serve() -> int:
    """Install, snapshot the example pipeline into the local store and serve it."""
    _ensure_venv("")
    env = local_store_env()
    print(f"dev.py: snapshotting {EXAMPLE} into {env['ZENML_CONFIG_PATH']}", flush=True)
    result = subprocess.run(
        [str(BIN / "zenml-serving"), "snapshot", EXAMPLE],
        cwd=ROOT,
        env=env,
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0:
        return result.returncode
    snapshot_id = result.stdout.strip().splitlines()[-1]
    env["ZENML_PIPELINE_DEPLOYMENT_ID"] = snapshot_id
    port = env.get("ZENML_SERVICE_PORT", "8001")
    print(
        f"dev.py: serving snapshot {snapshot_id} on port {port}; try:\n"
        f"  curl -s -X POST http://127.0.0.1:{port}/invoke -H 'Content-Type: application/json' "
        """-d '{"parameters": {"message": "I love fast reliable tools"}}'\n""",
        flush=True,
    )
    os.chdir(ROOT)
    os.execve(str(BIN / "zenml-serving"), [str(BIN / "zenml-serving"), "serve"], env)
    return 0  # not reached


def test(pytest_args: list[str]) -> int:
    """Install with test extras; run ruff, mypy and pytest; fail on the first that fails."""
    _ensure_venv("test")
    sources = [p for p in ("src", "tests", "examples", "bench", "dev.py") if (ROOT / p).exists()]
    steps = [
        [str(PYTHON), "-m", "ruff", "check", *sources],
        [str(PYTHON), "-m", "ruff", "format", "--check", *sources],
        [str(PYTHON), "-m", "mypy"],
        [str(PYTHON), "-m", "pytest", *pytest_args],
    ]
    for command in steps:
        print(
            f"dev.py: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}",
            flush=True,
        )
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        if code != 0:
            return code
    return 0


def main(argv: list[str]) -> int:
    """Dispatch `serve`, `test` or `lock`."""
    _check_python()
    if not argv or argv[0] not in ("serve", "test", "lock"):
        print(__doc__)
        return 2
    if argv[0] == "serve":
        return serve()
    if argv[0] == "lock":
        return lock(upgrade="--upgrade" in argv[1:])
    return test(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
