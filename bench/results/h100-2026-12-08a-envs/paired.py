"""Paired ratios of `bench/device.sh envs` rounds: the `new` setting against each other one, per
round (the settings of one round ran back to back, in rotated order), over call1/ and call2/.
Run from this folder: python3 paired.py > paired.txt"""
import re
import statistics as st

rows = {}
for folder, offset in [("call1", 0), ("call2", 10)]:
    for line in open(f"{folder}/runs.txt"):
        m = re.match(r"round (\d+) (\S+) .*minilm train (\S+) infer (\S+) gpt2 train (\S+)", line)
        r, label, train, infer, gpt2 = m.groups()
        gpt2 = None if gpt2 == "failed" else float(gpt2)  # call2 ran MiniLM alone (GPT2=0)
        rows.setdefault(int(r) + offset, {})[label] = (float(train), float(infer), gpt2)

for idx, name in [(0, "MiniLM-shaped fine-tune"), (1, "MiniLM inference"), (2, "GPT-2 small fine-tune")]:
    rounds = [r for r in rows if rows[r]["new"][idx] is not None]
    medians = {label: st.median(rows[r][label][idx] for r in rounds) for label in rows[rounds[0]]}
    print(f"{name}: {len(rounds)} rounds; median samples/s", {k: round(v, 1) for k, v in medians.items()})
    for label in ["old", "lists-fresh", "scores-apart"]:
        ratios = sorted(rows[r]["new"][idx] / rows[r][label][idx] for r in rounds)
        q = len(ratios) // 4
        print(f"  new / {label}: median {st.median(ratios):.3f}, middle half {ratios[q]:.2f}-{ratios[-q - 1]:.2f},"
              f" range {ratios[0]:.2f}-{ratios[-1]:.2f}")
