#!/usr/bin/env bash
# /tmp/ab.sh OUTDIR NAME_A BIN_A NAME_B BIN_B [ROUNDS]: alternated SST-2 640 fine-tune (+ full dev eval) and MiniLM-shaped steps.
set -u
out=$1; a=$2; ba=$3; b=$4; bb=$5; rounds=${6:-3}
mkdir -p "$out"
for r in $(seq "$rounds"); do
  for pair in "$a:$ba" "$b:$bb"; do
    n=${pair%%:*}; bin=${pair#*:}
    rm -rf "$out/ft-$n-$r"
    "$bin" --quiet finetune /work/shared/models/all-MiniLM-L6-v2 --task sst2 --data-dir /work/shared/data/glue --train-limit 640 --epochs 1 --lr 5e-5 --no-export --no-checkpoint --no-test-predictions --out "$out/ft-$n-$r" > /dev/null 2>&1
    "$bin" --quiet bench train /tmp/minilm-random --steps 5 --batch-size 32 --seq-len 128 > "$out/syn-$n-$r.json" 2>/dev/null
    python3 - "$out" "$n" "$r" <<'PY'
import json, sys
out, n, r = sys.argv[1:]
e = json.load(open(f"{out}/ft-{n}-{r}/result.json"))["epochs"][0]
s = json.loads([l for l in open(f"{out}/syn-{n}-{r}.json") if l.startswith("{")][-1])
print(f"round {r} {n:>8}: fine-tune {e['samples_per_second']:.2f} samples/s loss {e['train_loss']:.6f}; eval {e['eval']['examples']/e['eval_seconds']:.1f} samples/s acc {e['eval']['main_value']:.5f}; synthetic {s['samples_per_second']:.2f} loss {s.get('train_loss')}")
PY
  done
done
