"""Paired ratios of `bench/device.sh envs` rounds: one setting (BASE, the first of ENVS) against
each other one, per round (one round's settings ran back to back, in rotated order), over one or
more runs.txt files (rounds numbered on across files). Medians, the middle half and the range,
per measure (MiniLM-shaped fine-tune and inference; GPT-2 small's fine-tune where it ran), and
whether the training losses the rounds printed agree to the last bit.

    python3 bench/envs_paired.py BASE DIR/runs.txt [MORE/runs.txt ...]
"""
import re
import statistics as st
import sys

# The training losses each round printed, as written (repr: every bit).
LOSSES = [("MiniLM", r"minilm loss (\S+)"), ("GPT-2 small", r"gpt2 train \S+ loss (\S+)")]
MEASURES = [("minilm train", "MiniLM-shaped fine-tune"), ("infer", "MiniLM inference"), ("gpt2 train", "GPT-2 small fine-tune")]


def rounds(paths):
    """{round: {label: {measure: samples/s}}}, the labels in the order first seen, and the training
    losses each setting printed (since 2026-12-08), {model: {label: {loss, ...}}}."""
    table, order, offset, losses = {}, [], 0, {}
    for path in paths:
        last = 0
        for line in open(path):
            m = re.match(r"round (\d+) (\S+) \(.*?\): (.*) at \d+ s$", line.strip())
            if not m:
                continue
            r, label, figures = int(m.group(1)), m.group(2), m.group(3)
            last = max(last, r)
            values = {}
            for key, _ in MEASURES:
                found = re.search(rf"(?:^| ){key} (\S+)", figures)
                if found and found.group(1) != "failed":
                    values[key] = float(found.group(1))
            for key, pattern in LOSSES:
                found = re.search(pattern, figures)
                if found and found.group(1) != "failed":
                    losses.setdefault(key, {}).setdefault(label, set()).add(found.group(1))
            table.setdefault(r + offset, {})[label] = values
            if label not in order:
                order.append(label)
        offset += last
    return table, order, losses


def main(base, paths):
    table, labels, losses = rounds(paths)
    if not table:
        sys.exit(f"error: no rounds in {', '.join(paths)}")
    if base not in labels:
        sys.exit(f"error: no setting {base!r} in {', '.join(paths)} (settings: {', '.join(labels)})")
    for key, name in MEASURES:
        usable = [r for r in table if all(key in table[r].get(l, {}) for l in labels)]
        if not usable:
            continue
        medians = {l: round(st.median(table[r][l][key] for r in usable), 1) for l in labels}
        print(f"{name}: {len(usable)} rounds; median samples/s {medians}")
        for other in labels:
            if other == base:
                continue
            ratios = sorted(table[r][base][key] / table[r][other][key] for r in usable)
            q = len(ratios) // 4
            print(f"  {base} / {other}: median {st.median(ratios):.3f}, middle half {ratios[q]:.2f}-{ratios[-q - 1]:.2f},"
                  f" range {ratios[0]:.2f}-{ratios[-1]:.2f}")


    for model, by_label in losses.items():
        values = set().union(*by_label.values())
        if len(values) == 1:
            print(f"{model} training loss: {values.pop()} under every setting, every round")
        else:
            print(f"{model} training losses differ:", {label: sorted(v) for label, v in by_label.items()})


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: envs_paired.py BASE runs.txt [runs.txt ...]")
    main(sys.argv[1], sys.argv[2:])
