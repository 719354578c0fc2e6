#!/usr/bin/env python3
"""Summarise a CubeCL kernel profile (the `basic` profiling logger's trace, one line per kernel:
`| 123.4µs | KernelName | ...`) by kernel family: launches, total time, share, mean.

    python3 bench/profile_summary.py PROFILE.log [--steps N] [--top 20]

With --steps, launches and times are also given per training step. Times are those the logger
measured, each kernel timed alone (the logger synchronises around every kernel), so they add
launch and synchronisation overhead to every kernel: compare traces with each other, not with
the unprofiled step time.
"""

import argparse
import collections
import re
import sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
LINE = re.compile(r"\|\s*([\d.]+)(ns|µs|us|ms|s)\s*\|\s*(.*)")


def family(name: str) -> str:
    parts = [p.strip() for p in name.split("|")]
    if parts[0] == "MatmulEntry":
        return "MatmulEntry (" + ("SimpleMatmul" if "SimpleMatmulFamily" in name else parts[1]) + ")"
    keep = [p for p in parts[:2] if p and p != "CudaRuntime" and p != "TensorArgs"]
    return " ".join(keep)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile")
    ap.add_argument("--steps", type=int, default=0, help="training steps the trace covers")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    total = collections.Counter()
    count = collections.Counter()
    try:
        lines = open(args.profile, encoding="utf-8")
    except OSError as e:
        print(f"{args.profile}: {e.strerror}", file=sys.stderr)
        return 1
    with lines:
        for n, line in enumerate(lines, 1):
            m = LINE.match(line)
            if not m:
                continue
            key = family(m.group(3))
            total[key] += float(m.group(1)) * UNITS[m.group(2)]
            count[key] += 1
    if not count:
        print(f"{args.profile}: no kernel lines (`| <time> | <name> ...`)", file=sys.stderr)
        return 1
    grand = sum(total.values())
    launches = sum(count.values())
    per = f", {launches / args.steps:.0f} launches and {1e3 * grand / args.steps:.1f} ms per step" if args.steps else ""
    print(f"{args.profile}: {launches} kernel launches, {grand:.3f} s{per}")
    print("| kernel family | launches | total s | share | mean µs |")
    print("|---|---:|---:|---:|---:|")
    for key, t in total.most_common(args.top):
        print(f"| {key} | {count[key]} | {t:.3f} | {100 * t / grand:.1f} % | {1e6 * t / count[key]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
