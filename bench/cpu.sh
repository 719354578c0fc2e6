#!/usr/bin/env bash
# prunelab's CPU backend against PyTorch on the same machine, cores and threads (issue 23):
#
#   PYTHON=/path/to/venv/bin/python MINILM=DIR GLUE=DIR bash bench/cpu.sh [OUT]
#
# PYTHON has torch and transformers (torch uses its default thread count: the cores); MINILM is
# all-MiniLM-L6-v2 (config.json, tokenizer.json, model.fp16.safetensors) and GLUE the GLUE TSV
# layout. Two workloads, each as one JSON record per tool in OUT (default bench/results/cpu-<date>):
#   1. `bench train` / `torch_bench.py train` on a random checkpoint of MiniLM's shape: synthetic
#      batches of 32 x 128, STEPS timed steps (default 5), prunelab by default (products, softmax,
#      GELU, dropout and LayerNorm on every core), with --fused burn (Burn's softmax, GELU, dropout
#      and LayerNorm), and
#      with --gemm burn --fused burn (Burn's single-threaded ops only);
#   2. fine-tuning the real MiniLM on the first 640 SST-2 training rows (batch 32, dynamic padding,
#      max length 128, one epoch) and evaluating the 872 dev sentences (prunelab batches them
#      longest first; torch is timed in the split's order, as transformers' Trainer evaluates,
#      and longest first too).
# Then a table of the ratios. CI does not run it (it takes about 5 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MINILM=${MINILM:?set MINILM to the all-MiniLM-L6-v2 directory}
GLUE=${GLUE:?set GLUE to the GLUE TSV directory}
OUT=${1:-bench/results/cpu-$(date +%Y-%m-%d)}
STEPS=${STEPS:-5}
mkdir -p "$OUT"
cargo build --release -q -p prunelab-cli
PL=target/release/prunelab
"$PL" --version | tee "$OUT/version.txt"
"$PYTHON" -c 'import torch, transformers; print("torch", torch.__version__, "threads", torch.get_num_threads(), "transformers", transformers.__version__)' | tee -a "$OUT/version.txt"
RANDOM_MINILM=$(mktemp -d)
"$PL" --quiet bench init --arch minilm --out "$RANDOM_MINILM" > /dev/null

# 1. Synthetic fixed-length batches.
for variant in auto:"--gemm auto --fused auto" unfused:"--fused burn" burn:"--gemm burn --fused burn"; do
  # shellcheck disable=SC2086 # the options split into words
  "$PL" --quiet ${variant#*:} bench train "$RANDOM_MINILM" --batch-size 32 --seq-len 128 --steps "$STEPS" > "$OUT/train-minilm-prunelab-${variant%%:*}.json"
done
"$PYTHON" bench/torch_bench.py train "$RANDOM_MINILM" --batch-size 32 --seq-len 128 --steps "$STEPS" --precision f32 > "$OUT/train-minilm-torch.json" 2> /dev/null

# 2. The issue's recipe on real data.
"$PL" --quiet finetune "$MINILM" --task sst2 --data-dir "$GLUE" --train-limit 640 --epochs 1 --lr 5e-5 \
  --no-export --no-checkpoint --no-test-predictions --out "$OUT/sst2-640-prunelab" > /dev/null
"$PYTHON" bench/torch_finetune.py --model "$MINILM" --glue "$GLUE" --task sst2 --epochs 1 --train-limit 640 \
  --precision f32 --eval-by-length-too --out "$OUT/sst2-640-torch.json" > /dev/null 2>&1
rm -rf "$RANDOM_MINILM"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
load = lambda name: json.loads([l for l in open(f"{out}/{name}") if l.startswith("{")][-1])
pl = {g: load(f"train-minilm-prunelab-{g}.json")["samples_per_second"] for g in ("auto", "unfused", "burn")}
pt = load("train-minilm-torch.json")["samples_per_second"]
ft = json.load(open(f"{out}/sst2-640-prunelab/result.json"))["epochs"][0]
tt = json.load(open(f"{out}/sst2-640-torch.json"))["epochs"][0]
rows = [
    ("MiniLM shape, 32 x 128, fine-tune samples/s (default build and options)", pl["auto"], pt),
    ("... --fused burn (Burn's softmax, GELU, dropout and LayerNorm)", pl["unfused"], pt),
    ("... --gemm burn --fused burn (Burn's single-threaded ops only)", pl["burn"], pt),
    ("SST-2, 640 rows: fine-tune samples/s", ft["samples_per_second"], tt["samples_per_second"]),
    ("SST-2: evaluation of 872 dev sentences, samples/s (torch in the split's order, as Trainer)", ft["eval"]["examples"] / ft["eval_seconds"], tt["eval_samples_per_second"]),
    ("... torch longest first too, as prunelab (the same padded batches)", ft["eval"]["examples"] / ft["eval_seconds"], tt["eval_by_length_samples_per_second"]),
]
lines = ["| measure | prunelab | torch | prunelab / torch |", "|---|---|---|---|"]
lines += [f"| {m} | {a:.2f} | {b:.2f} | {a / b:.2f}x |" for m, a, b in rows]
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
