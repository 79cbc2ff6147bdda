"""Summarise a py-spy `--format raw` (collapsed stacks) profile as text: the finding, not the graph.

    py-spy record --pid <worker> --duration 15 --rate 250 --threads --nonblocking \
        --format raw -o prof.txt
    .venv/bin/python bench/pyspy_summary.py prof.txt [--top 25] [--match zenml_serving]

Prints samples per thread, then the functions with the most inclusive and self samples (as %
of all samples), and for `--match` the share of samples whose stack contains that text.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def main(argv: list[str]) -> int:
    """Read the collapsed stacks, print the summary."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", action="append", default=[], help="text to look for in stacks")
    args = p.parse_args(argv)
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    matches: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames and frames[0].startswith(("thread", "process")):
            threads[frames[0]] += count
            frames = [f for f in frames if not f.startswith(("thread", "process"))]
        total += count
        names = [_short(f) for f in frames]
        for name in set(names):
            inclusive[name] += count
        if names:
            self_[names[-1]] += count
        for text in args.match:
            if text in stack:
                matches[text] += count
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples")
    for thread, n in threads.most_common():
        print(f"  {100 * n / total:5.1f}%  {thread}")
    for title, counter in (("inclusive", inclusive), ("self", self_)):
        print(f"\ntop {args.top} by {title} samples:")
        for name, n in counter.most_common(args.top):
            print(f"  {100 * n / total:5.1f}%  {name}")
    for text, n in matches.items():
        print(f"\nstacks containing {text!r}: {100 * n / total:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
