#!/usr/bin/env bash
# alt-isa.sh OUT ROUNDS BIN LEVEL...: prunelab (BIN, PRUNELAB_CPU_ISA=LEVEL for each LEVEL) and torch limited to AVX2
# (MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2) alternated on bench/cpu.sh's
# SST-2 640-row recipe (fine-tune, then the dev evaluation; torch's also longest first), as a CPU without AVX-512 runs them.
set -u
out=$1; rounds=$2; bin=$3; shift 3
mkdir -p "$out"
for r in $(seq "$rounds"); do
  for level in "$@"; do
    rm -rf "$out/pl-$level-$r"
    PRUNELAB_CPU_ISA=$level "$bin" --quiet finetune /work/shared/models/all-MiniLM-L6-v2 --task sst2 --data-dir /work/shared/data/glue --train-limit 640 --epochs 1 --lr 5e-5 --no-export --no-checkpoint --no-test-predictions --out "$out/pl-$level-$r" > /dev/null 2>&1
  done
  MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 /tmp/tv/bin/python bench/torch_finetune.py --model /work/shared/models/all-MiniLM-L6-v2 --glue /work/shared/data/glue --task sst2 --epochs 1 --train-limit 640 --precision f32 --eval-by-length-too --out "$out/torch-avx2-$r.json" > /dev/null 2>&1
  python3 - "$out" "$r" "$@" <<'PY'
import json, sys
out, r, *levels = sys.argv[1:]
t = json.load(open(f"{out}/torch-avx2-{r}.json"))["epochs"][0]
line = f"round {r}: torch-avx2 fine-tune {t['samples_per_second']:.2f} eval {t['eval_samples_per_second']:.1f} by-length {t['eval_by_length_samples_per_second']:.1f}"
for level in levels:
    e = json.load(open(f"{out}/pl-{level}-{r}/result.json"))["epochs"][0]
    ev = e["eval"]["examples"] / e["eval_seconds"]
    line += f" | {level} fine-tune {e['samples_per_second']:.2f} ({e['samples_per_second']/t['samples_per_second']:.2f}x) loss {e['train_loss']:.6f} eval {ev:.1f} ({ev/t['eval_by_length_samples_per_second']:.2f}x same batches)"
print(line)
PY
done
