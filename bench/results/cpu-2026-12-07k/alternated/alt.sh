#!/usr/bin/env bash
# /tmp/alt.sh OUT ROUNDS: prunelab (target/release/prunelab) and torch alternated on the SST-2 640-row recipe of bench/cpu.sh.
set -u
out=$1; rounds=${2:-3}; mkdir -p "$out"
for r in $(seq "$rounds"); do
  rm -rf "$out/pl-$r"
  target/release/prunelab --quiet finetune /work/shared/models/all-MiniLM-L6-v2 --task sst2 --data-dir /work/shared/data/glue --train-limit 640 --epochs 1 --lr 5e-5 --no-export --no-checkpoint --no-test-predictions --out "$out/pl-$r" > /dev/null 2>&1
  /tmp/tv/bin/python bench/torch_finetune.py --model /work/shared/models/all-MiniLM-L6-v2 --glue /work/shared/data/glue --task sst2 --epochs 1 --train-limit 640 --precision f32 --eval-by-length-too --out "$out/torch-$r.json" > /dev/null 2>&1
  python3 - "$out" "$r" <<'PY'
import json, sys
out, r = sys.argv[1:]
e = json.load(open(f"{out}/pl-{r}/result.json"))["epochs"][0]
t = json.load(open(f"{out}/torch-{r}.json"))["epochs"][0]
ev = e["eval"]["examples"] / e["eval_seconds"]
print(f"{r} prunelab {e['samples_per_second']:.2f} torch {t['samples_per_second']:.2f} ratio {e['samples_per_second']/t['samples_per_second']:.2f} | eval {ev:.1f} torch {t['eval_samples_per_second']:.1f} ({ev/t['eval_samples_per_second']:.2f}x) by-length {t['eval_by_length_samples_per_second']:.1f} ({ev/t['eval_by_length_samples_per_second']:.2f}x)")
PY
done
