#!/usr/bin/env bash
# Runs on the GPU machine, in the repository root, with the prepared `.device/` folder carried
# along (`bash bench/prepare-device.sh data|cuda|wgpu|xtask` fills it): `.device/bin/prunelab.xz`
# (a stripped `--features cuda` release build), `.device/minilm/` (config.json, tokenizer.json,
# model.fp16.safetensors), `.device/glue/{SST-2,CoLA}/*.tsv`, and optionally `.device/kernels/` (a
# CubeCL kernel cache from an earlier call). Everything it produces goes under $OUT. The carry is
# 64 MiB: name only the `.device/` paths a mode needs (wgpu: the binaries, glue, tokenizers and
# MiniLM's json files; minilm: the cuda binary, xtask, glue and minilm/).
#
#   bash bench/device.sh probe      # cold and warm time to first step, step speed, torch speed
#   bash bench/device.sh accuracy   # issue 5's check: MiniLM SST-2/CoLA dense and 90 %, both tools
#   bash bench/device.sh bench      # cargo xtask bench with prebuilt binaries (.device/bin/xtask)
#   bash bench/device.sh minilm     # issue 6: the minilm preset, resumable across calls (see below)
#   bash bench/device.sh speed      # f32 vs bf16 mixed precision, prunelab and torch, side by side
#   bash bench/device.sh variants   # .device/bin/prunelab-<variant>.xz builds side by side, with kernel profiles
#                                   # (env: COLD, BF16, PROFILE, PRUNED: lists of variants; FIRST_LIMIT, TORCH_PRECISIONS, RANDOM_MINILM)
#   bash bench/device.sh alternate  # one build vs torch f32 alternated (VARIANT, REPEATS), MiniLM's shape (MINILM_VARIANTS)
#   bash bench/device.sh launches   # VARIANT's kernel launches per process (RUNS fresh processes, each GEMM), and its throughput
#   bash bench/device.sh gemm       # a --features cublas build: --gemm burn / cublas (on CubeCL's stream, or host-ordered) / cublas-f32 vs torch (GEMMS, REPEATS, TUNE, INFER, LIMIT)
#   bash bench/device.sh flat       # the flat optimizer step vs the per-tensor one (VARIANT), torch beside, GPU busy time from CUPTI (REPEATS, TUNE_LIMIT)
#   bash bench/device.sh fused      # issue 22: --fused burn / gathers / norms / auto (VARIANT) vs torch, CUPTI launches (REPEATS, TUNE_LIMIT, LIMIT)
#   bash bench/device.sh precision  # issue 22: --precision bf16 through cuBLAS (no casts) vs torch bf16 autocast; CUPTI launches per phase of a step
#   bash bench/device.sh norm       # issue 22: the optimizer's norm kernel, build before (prunelab-before.xz) vs after, torch beside; CUPTI kernel time by name
#   bash bench/device.sh embed      # issue 22: the embedding-gradient kernel, the same comparison (records in embed/)
#   bash bench/device.sh softmax    # issue 22: the softmax kernel, the same comparison (records in softmax/)
#   bash bench/device.sh batched    # issue 22: the attention's products through cuBLAS's batches, the same comparison (batched/)
#   bash bench/device.sh pipeline   # issue 22: predictions read every 8 batches, the same comparison (pipeline/)
#   bash bench/device.sh bias       # issue 22: biases in cuBLASLt's epilogue, the same comparison (bias/); with
#                                   # OLD_ENV=PRUNELAB_CUBLAS_BIAS=burn, "before" is the same build with Burn's adds,
#                                   # and NEW_ENV=PRUNELAB_CUBLAS_BIAS=training puts training's biases there too
#                                   # (the default since 2026-12-07; =inference leaves them to Burn)
#   bash bench/device.sh gather     # issue 22: the optimizer's gathers as one kernel launch (gather.cu), the same comparison
#                                   # (gather/); OLD_ENV=PRUNELAB_GATHER=copies: "before" is the same build with a copy per part
#   bash bench/device.sh residual   # issues 22/23: post-LayerNorm residual sums inside the norm's kernel, the same comparison
#                                   # (residual/); OLD_ENV=PRUNELAB_RESIDUAL_NORM=apart: "before" is the same build with Burn's adds
#   bash bench/device.sh elementwise  # issue 22: GELU and dropout as kernels of our own (elementwise.cu), the same comparison
#                                   # (elementwise/); OLD_ENV=PRUNELAB_CUDA_FUSED=softmax: "before" is the same build with Burn's
#   bash bench/device.sh gradients  # issue 22: bias gradients by the weight gradient's product (cuBLASLt's BGRADA) and the
#                                   # attention's outputs with heads interleaved, the same comparison (gradients/); with
#                                   # OLD_ENV="PRUNELAB_CUBLAS_BIAS=sums PRUNELAB_CUBLAS_HEADS=contiguous": both off
#   bash bench/device.sh lists      # issue 22: batched products' address lists read again and the scores' scale and mask
#                                   # inside the softmax kernel, the same comparison (lists/); with
#                                   # OLD_ENV="PRUNELAB_CUBLAS_LISTS=fresh PRUNELAB_CUDA_SCORES=apart": both off
#   bash bench/device.sh counts     # issue 22: CUPTI kernel counts alone, MiniLM inference and training, before vs VARIANT (counts/)
#   bash bench/device.sh envs       # issue 22: one build under several settings of its own (ENVS), MiniLM and GPT-2 rounds (envs/;
#                                   # paired.txt: the first setting over each other, per round, by bench/envs_paired.py)
#   bash bench/device.sh infer      # issue 22: MiniLM bench infer alone, before vs VARIANT, torch beside (a short call; infer/)
#   bash bench/device.sh builds     # issue 22: which build xtask reproduce takes: VARIANTS from an empty cache on a real fine-tune, then bench train vs torch
#   bash bench/device.sh auto       # what --gemm auto picks in a --features cublas build (VARIANT), with and without CubeCL's stream
#   bash bench/device.sh timing     # the seed grid (or GRID) timed on random checkpoints of its models' shapes (ROWS, JOBS, RUN_LIMIT)
#   bash bench/device.sh wgpu       # the wgpu build (.device/bin/prunelab-wgpu.xz) on Vulkan beside cuda: a fine-tune each, xtask bench --parts PARTS
#   bash bench/device.sh fixtures GROUP...   # scripts/make_fixtures.py --only GROUP...
set -uo pipefail
OUT=${OUT:?set OUT}
export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
mkdir -p "$OUT/logs"
BIN=/tmp/prunelab
if [ -e .device/bin/prunelab.xz ]; then xz -dc .device/bin/prunelab.xz > "$BIN" && chmod +x "$BIN"; fi
# Compressed to fit the 64 MiB carry: the xtask binary and the MiniLM weights.
if [ -e .device/bin/xtask.xz ]; then xz -dc .device/bin/xtask.xz > .device/bin/xtask && chmod +x .device/bin/xtask; fi
if [ -e .device/minilm/model.fp16.safetensors.xz ] && [ ! -e .device/minilm/model.fp16.safetensors ]; then
  xz -dc .device/minilm/model.fp16.safetensors.xz > .device/minilm/model.fp16.safetensors && rm .device/minilm/model.fp16.safetensors.xz
fi
# Data files may travel xz-compressed too.
for f in .device/glue/*/*.xz .device/tokenizers/*/*.xz; do [ -e "$f" ] && xz -d "$f"; done
KCACHE=/tmp/kernels
mkdir -p "$KCACHE"
if [ -f .device/kernels.tgz ]; then tar xzf .device/kernels.tgz -C "$KCACHE"; fi
MODEL=.device/minilm
GLUE=.device/glue
RECIPE=(--epochs 3 --lr 5e-5 --batch-size 32 --max-length 128)
PL_ONLY=(--no-export)

info() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
  # Modes that unpack builds of their own carry no .device/bin/prunelab.xz.
  if [ -x "$BIN" ]; then "$BIN" --version; fi
}

# prunelab finetune NAME TASK [ARGS...]: one run into $OUT/NAME, its log in $OUT/logs/NAME.log.
pl() {
  local name=$1 task=$2
  shift 2
  local cache=$KCACHE
  # Concurrent runs get a cache each (CubeCL's cache files are not shared between processes).
  if [ -n "${PER_RUN_CACHE:-}" ]; then cache=$KCACHE-$name; cp -r "$KCACHE" "$cache"; fi
  timeout "${RUN_LIMIT:-3600}" "$BIN" --kernel-cache "$cache" finetune "$MODEL" --task "$task" --data-dir "$GLUE" \
    --out "$OUT/$name" "${PL_ONLY[@]}" "$@" > "$OUT/logs/$name.log" 2>&1
  echo "prunelab $name: exit $? $(tail -n 1 "$OUT/logs/$name.log")"
}

# torch reference NAME TASK [ARGS...]
pt() {
  local name=$1 task=$2
  shift 2
  timeout "${RUN_LIMIT:-3600}" python3 bench/torch_finetune.py --model "$MODEL" --glue "$GLUE" --task "$task" --out "$OUT/$name.json" "$@" \
    > /dev/null 2> "$OUT/logs/$name.log"
  echo "torch $name: exit $? $(python3 -c "import json;r=json.load(open('$OUT/$name.json'));print(r['main_metric'], round(r['main'],4), 'samples/s', [round(e['samples_per_second']) for e in r['epochs']])" 2>&1)"
}

# The machine returns only a few files: the kernel cache and everything else go back as archives.
save_cache() { tar czf "$OUT/kernels.tgz" -C "$KCACHE" . && du -sh "$OUT/kernels.tgz"; }
pack() {
  # Epoch checkpoints (4× the model each) cannot travel in the 64 MiB carry: a cell killed at a
  # call's limit starts over in the next call.
  (cd "$OUT" && find . \( -name model -o -name checkpoint \) -type d -prune -exec rm -rf {} + \
    && find . -name '*.safetensors' -size +5M -delete && tar czf /tmp/results.tgz --exclude=kernels.tgz . \
    && find . -mindepth 1 -maxdepth 1 ! -name kernels.tgz -exec rm -rf {} + && mv /tmp/results.tgz results.tgz)
}

# summarize DIR: one line per JSON record in DIR (its last JSON line): throughput, and the
# first step's time, the training loss and the precision where the record has them.
summarize() {
  for f in "$1"/*.json; do
    echo "$(basename "$f" .json): $(python3 -c "
import json, sys
r = json.loads([x for x in open(sys.argv[1]) if x.startswith('{')][-1])
parts = [f\"{r.get('samples_per_second', 0):.1f} samples/s\"]
first = r.get('first_step_seconds', r.get('warmup_seconds'))
if first is not None: parts.append(f'first step {first:.2f} s')
if r.get('train_loss') is not None: parts.append(f\"loss {r['train_loss']}\")
if r.get('precision'): parts.append(r['precision'])
if r.get('tflops') is not None: parts.append(f\"{r['tflops']:.1f} TFLOP/s, relative error {r['relative_error']:.1e}\")
if r.get('gemm'): parts.append('gemm ' + r['gemm'])
if r.get('fused'): parts.append('fused ' + r['fused'])
print('; '.join(parts))" "$f" 2>&1 | tail -n 1)"
  done
}

# torch_measures NAME DIR PRECISION RECORDS LOG TRAIN_LIMIT INFER_LIMIT: bench/torch_bench.py's
# fine-tune (50 steps) and eval measures of one model, into RECORDS/torch-{train,infer}-NAME-PRECISION.json.
torch_measures() {
  timeout "$6" python3 bench/torch_bench.py train "$2" --steps 50 --precision "$3" > "$4/torch-train-$1-$3.json" 2>> "$5"
  timeout "$7" python3 bench/torch_bench.py infer "$2" --precision "$3" > "$4/torch-infer-$1-$3.json" 2>> "$5"
}

# Mixed precision's speed, side by side: prunelab f32 and bf16-mixed, torch f32 and bf16
# autocast, fine-tune (batch 32 × 128) and eval (batch 64 × 128), GPT-2 small and MiniLM, one
# at a time. Records in $OUT/speed/*.json.
speed_mixed() {
  mkdir -p "$OUT/speed"
  local cache=${RUN:-/tmp}/kernels
  [ -d "$cache" ] || cache=$KCACHE
  "$BIN" --quiet bench init --arch gpt2-small --out /tmp/gpt2-small > /dev/null
  for m in gpt2-small:/tmp/gpt2-small minilm:$MODEL; do
    local name=${m%%:*} dir=${m#*:}
    for p in f32 bf16; do
      timeout 60 "$BIN" --quiet --kernel-cache "$cache" --precision "$p" bench train "$dir" --batch-size 32 --seq-len 128 --steps 50 \
        > "$OUT/speed/prunelab-train-$name-$p.json" 2>> "$OUT/logs/speed.log"
      timeout 45 "$BIN" --quiet --kernel-cache "$cache" --precision "$p" bench infer "$dir" \
        > "$OUT/speed/prunelab-infer-$name-$p.json" 2>> "$OUT/logs/speed.log"
      torch_measures "$name" "$dir" "$p" "$OUT/speed" "$OUT/logs/speed.log" 60 45
    done
  done
  summarize "$OUT/speed"
}

# Build variants side by side (issue 7's "find and fix the biggest costs"): every
# `.device/bin/prunelab-<variant>.xz`, in name order, runs the same GPT-2 small (and MiniLM, when carried)
# fine-tune and eval measures one after the other, and torch runs them in the same call. A
# variant named in COLD (space-separated) starts from an empty kernel cache, so its first step
# is the cold start; the others start from .device/kernels-<variant>.tgz (a cache an earlier
# call returned), else .device/kernels.tgz. Variants named in BF16 also run
# bf16 mixed precision, those in PROFILE a kernel-level profile of the f32 training step
# (CubeCL's profiling logger, set by a `cubecl.toml` in a scratch directory). FIRST_LIMIT caps
# the first (cold) run; TORCH_PRECISIONS picks torch's runs (default "f32 bf16").
# Records: $OUT/variants/*.json, $OUT/profile-<variant>.log.
variants() {
  mkdir -p "$OUT/variants"
  local models=(gpt2-small:/tmp/gpt2-small)
  if [ -e "$MODEL/config.json" ] && [ -e "$MODEL/model.fp16.safetensors" ]; then models+=(minilm:$MODEL); fi
  local bins=() v
  for f in .device/bin/prunelab-*.xz; do
    v=${f#.device/bin/prunelab-}; v=${v%.xz}
    xz -dc "$f" > "/tmp/pl-$v" && chmod +x "/tmp/pl-$v" && bins+=("$v")
    echo "variant $v: $("/tmp/pl-$v" --version)"
  done
  "/tmp/pl-${bins[0]}" --quiet bench init --arch gpt2-small --out /tmp/gpt2-small > /dev/null
  # Without the real MiniLM (the carry cannot hold it next to several binaries): a random
  # checkpoint of its shape, which runs the same kernels.
  if [ ${#models[@]} -eq 1 ] && [ -n "${RANDOM_MINILM:-}" ]; then
    "/tmp/pl-${bins[0]}" --quiet bench init --arch minilm --out /tmp/minilm-random > /dev/null && models+=(minilm:/tmp/minilm-random)
  fi
  in_list() { [[ " $2 " == *" $1 "* ]]; }
  torch_runs() {
    for m in "${models[@]}"; do
      local name=${m%%:*} dir=${m#*:}
      for p in ${TORCH_PRECISIONS:-f32 bf16}; do
        torch_measures "$name" "$dir" "$p" "$OUT/variants" "$OUT/logs/variants-torch.log" 90 60
      done
    done
    echo "torch done at ${SECONDS} s"
  }
  for v in "${bins[@]}"; do
    local cache=/tmp/kernels-$v
    rm -rf "$cache" && mkdir -p "$cache"
    if ! in_list "$v" "${COLD:-}"; then
      if [ -f ".device/kernels-$v.tgz" ]; then tar xzf ".device/kernels-$v.tgz" -C "$cache"; else cp -r "$KCACHE/." "$cache/"; fi
    fi
    local precisions=(f32)
    in_list "$v" "${BF16:-}" && precisions+=(bf16)
    for m in "${models[@]}"; do
      local name=${m%%:*} dir=${m#*:}
      for p in "${precisions[@]}"; do
        for run in first warm; do
          [ "$run" = first ] && { [ "$p" = bf16 ] || [ "$name" != gpt2-small ]; } && continue
          timeout "${FIRST_LIMIT:-300}" "/tmp/pl-$v" --quiet --kernel-cache "$cache" --precision "$p" bench train "$dir" --batch-size 32 \
            --seq-len 128 --steps 50 > "$OUT/variants/$v-train-$name-$p-$run.json" 2>> "$OUT/logs/variants-$v.log"
          echo "$v train $name $p $run: exit $? at ${SECONDS} s"
        done
        timeout 120 "/tmp/pl-$v" --quiet --kernel-cache "$cache" --precision "$p" bench infer "$dir" \
          > "$OUT/variants/$v-infer-$name-$p.json" 2>> "$OUT/logs/variants-$v.log"
        # With 90 % of the default scope pruned and the masks held (the masks' work each step).
        if in_list "$v" "${PRUNED:-}" && [ "$name" = gpt2-small ]; then
          timeout 120 "/tmp/pl-$v" --quiet --kernel-cache "$cache" --precision "$p" bench train "$dir" --batch-size 32 \
            --seq-len 128 --steps 50 --amount 0.9 > "$OUT/variants/$v-train-$name-$p-pruned90.json" 2>> "$OUT/logs/variants-$v.log"
          echo "$v train $name $p pruned 90 %: exit $? at ${SECONDS} s"
        fi
      done
    done
    if in_list "$v" "${PROFILE:-}"; then
      mkdir -p "/tmp/profile-$v"
      printf '[profiling.logger]\nlevel = "basic"\nfile = "%s"\n' "$OUT/profile-$v.log" > "/tmp/profile-$v/cubecl.toml"
      (cd "/tmp/profile-$v" && timeout 120 "/tmp/pl-$v" --quiet --kernel-cache "$cache" bench train /tmp/gpt2-small \
        --batch-size 32 --seq-len 128 --steps 10 > "$OUT/variants/$v-profiled.json" 2>> "$OUT/logs/variants-$v.log")
      echo "$v profiled: exit $? at ${SECONDS} s ($(wc -c < "$OUT/profile-$v.log" 2>/dev/null) bytes of profile)"
    fi
    # Each variant's kernel cache comes back, for the next call to start warm.
    tar czf "$OUT/kernels-$v.tgz" -C "$cache" .
    # torch after the first variant: a call that runs out of time still has both sides.
    [ "$v" = "${bins[0]}" ] && torch_runs
  done
  summarize "$OUT/variants"
}

# unpack_build V: .device/bin/prunelab-V.xz to /tmp/pl-V, and its kernel cache
# (.device/kernels-V.tgz, when carried) to /tmp/kernels-V; once per call.
unpack_build() {
  [ -e "/tmp/pl-$1" ] && return
  xz -dc ".device/bin/prunelab-$1.xz" > "/tmp/pl-$1" && chmod +x "/tmp/pl-$1"
  mkdir -p "/tmp/kernels-$1"
  if [ -f ".device/kernels-$1.tgz" ]; then tar xzf ".device/kernels-$1.tgz" -C "/tmp/kernels-$1"; fi
}

# One build's fine-tuning throughput against torch f32, alternated REPEATS times in one call (the
# fused build's throughput varies between processes), then MiniLM's shape (a random checkpoint:
# the same kernels as the real one) with each of MINILM_VARIANTS, the first from the cache it
# has (a cold one takes minutes of autotuning: MINILM_LIMIT bounds each run), and torch on it.
alternate() {
  local v=${VARIANT:?set VARIANT} dir=$OUT/alternate log=$OUT/logs/alternate.log
  mkdir -p "$dir"
  for b in "$v" ${MINILM_VARIANTS:-}; do unpack_build "$b"; done
  "/tmp/pl-$v" --quiet bench init --arch gpt2-small --out /tmp/gpt2-small > /dev/null
  local train=(bench train --batch-size 32 --seq-len 128 --steps 50)
  for r in $(seq "${REPEATS:-3}"); do
    timeout 120 "/tmp/pl-$v" --quiet --kernel-cache "/tmp/kernels-$v" "${train[@]}" /tmp/gpt2-small \
      > "$dir/$v-train-gpt2-small-f32-$r.json" 2>> "$log"
    timeout 120 python3 bench/torch_bench.py train /tmp/gpt2-small --steps 50 --precision f32 \
      > "$dir/torch-train-gpt2-small-f32-$r.json" 2>> "$log"
    echo "round $r done at ${SECONDS} s"
  done
  if [ -n "${MINILM_VARIANTS:-}" ]; then
    "/tmp/pl-$v" --quiet bench init --arch minilm --out /tmp/minilm-random > /dev/null
    for b in $MINILM_VARIANTS; do
      for run in first warm; do
        timeout "${MINILM_LIMIT:-300}" "/tmp/pl-$b" --quiet --kernel-cache "/tmp/kernels-$b" "${train[@]}" /tmp/minilm-random \
          > "$dir/$b-train-minilm-f32-$run.json" 2>> "$log"
        echo "$b minilm $run: exit $? at ${SECONDS} s"
      done
      timeout 120 "/tmp/pl-$b" --quiet --kernel-cache "/tmp/kernels-$b" bench infer /tmp/minilm-random \
        > "$dir/$b-infer-minilm-f32.json" 2>> "$log"
      tar czf "$OUT/kernels-$b.tgz" -C "/tmp/kernels-$b" .
    done
    torch_measures minilm /tmp/minilm-random f32 "$dir" "$log" 90 60
  fi
  tar czf "$OUT/kernels-$v.tgz" -C "/tmp/kernels-$v" .
  summarize "$dir"
}

# libcublas is in the toolkit's lib64; libcupti (which tells prunelab CubeCL's CUDA stream) too
# on CUDA 13 (else in extras/CUPTI/lib64, or in the pip wheels torch brings): both go on
# LD_LIBRARY_PATH, for builds with --features cublas.
cuda_libs() {
  local cupti
  cupti=$(find /usr/local/cuda/ $(python3 -c 'import site; print(" ".join(site.getsitepackages()))') \
    -name 'libcupti.so*' 2>/dev/null | head -n 1)
  echo "libcupti: ${cupti:-none found}"
  [ -n "$cupti" ] && cupti=$(dirname "$cupti")
  local nvrtc
  nvrtc=$(find /usr/local/cuda/ $(python3 -c 'import site; print(" ".join(site.getsitepackages()))') \
    -name 'libnvrtc.so*' 2>/dev/null | head -n 1)
  echo "libnvrtc: ${nvrtc:-none found}"
  [ -n "$nvrtc" ] && nvrtc=$(dirname "$nvrtc")
  export LD_LIBRARY_PATH=/usr/local/cuda/lib64${cupti:+:$cupti}${nvrtc:+:$nvrtc}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}

# cuBLAS for the projections: VARIANT (default `cublas`, a build with --features cublas) runs
# GPT-2 small's fine-tune step (batch 32 × 128, 50 steps) with each of GEMMS (default
# "burn cublas cublas-host cublas-f32": a --gemm value, `-host` meaning PRUNELAB_CUBLAS_ORDER=host,
# i.e. cuBLAS on its own stream, ordered by the host), alternated REPEATS times (default 2) with
# torch f32 and TF32; then, unless INFER=0, eval and `bench matmul` (8192³ and GPT-2's MLP shape)
# with each. Before that, one short discarded run per --gemm of TUNE (default: those of GEMMS)
# compiles and tunes its kernels (TUNE_LIMIT seconds each, default 300: the fused build tunes
# minutes from a cold cache). Steps that would start after LIMIT seconds (default 500) are
# skipped, so the kernel cache always comes back. ARCH (default gpt2-small; e.g. minilm) picks the
# model (`prunelab bench init --arch`, random weights); MATMUL=0 skips the matmul measures. Records
# in $OUT/gemm/.
gemm() {
  local v=${VARIANT:-cublas} dir=$OUT/gemm log=$OUT/logs/gemm.log gemms=${GEMMS:-burn cublas cublas-host cublas-f32}
  local arch=${ARCH:-gpt2-small}
  local model=/tmp/$arch
  mkdir -p "$dir"
  unpack_build "$v"
  cuda_libs
  local pl=("/tmp/pl-$v" --quiet --kernel-cache "/tmp/kernels-$v")
  # gemm_cmd GEMM: sets `cmd` to prunelab with GEMM (`-host`: ordered by the host).
  local cmd
  gemm_cmd() {
    case $1 in
      *-host) cmd=(env PRUNELAB_CUBLAS_ORDER=host "${pl[@]}" --gemm "${1%-host}") ;;
      *) cmd=("${pl[@]}" --gemm "$1") ;;
    esac
  }
  # A product that hangs or fails would cost every run below its time limit: try one first.
  if ! RUST_LOG=prunelab_cublas=debug timeout 60 "${pl[@]}" --gemm cublas bench matmul --shape 1024,768,3072 --iters 20 > "$dir/smoke.json" 2>> "$log"; then
    echo "cuBLAS smoke test failed (see logs/gemm.log)"
    tail -n 20 "$log"
    return 1
  fi
  grep -h "cuBLAS\|CUPTI\|gemm" "$log" | tail -n 5
  "${pl[@]}" bench init --arch "$arch" --out "$model" > /dev/null
  local train=(bench train --batch-size 32 --seq-len 128 --steps 50) limit=${LIMIT:-500}
  # Compile and tune each --gemm's kernels; the first GPU process after the machine starts also
  # runs its kernels slowly (bench/NOTES.md), so these runs are discarded.
  for g in ${TUNE:-$(echo "$gemms" | tr ' ' '\n' | sed 's/-host$//' | sort -u)}; do
    gemm_cmd "$g"
    timeout "${TUNE_LIMIT:-300}" "${cmd[@]}" bench train --batch-size 32 --seq-len 128 --steps 5 "$model" > /dev/null 2>> "$log"
    echo "$g tuning run: exit $? at ${SECONDS} s"
  done
  for r in $(seq "${REPEATS:-2}"); do
    for g in $gemms; do
      [ "$SECONDS" -lt "$limit" ] || break 2
      gemm_cmd "$g"
      timeout 180 "${cmd[@]}" "${train[@]}" "$model" > "$dir/$g-train-$arch-$r.json" 2>> "$log"
      echo "$g train round $r: exit $? at ${SECONDS} s"
    done
    for p in f32 tf32; do
      timeout 120 python3 bench/torch_bench.py train "$model" --steps 50 --precision "$p" \
        > "$dir/torch-train-$arch-$p-$r.json" 2>> "$log"
    done
  done
  if [ "${INFER:-1}" = 1 ]; then
    for g in $gemms; do
      [ "$SECONDS" -lt "$limit" ] || break
      gemm_cmd "$g"
      timeout 120 "${cmd[@]}" bench infer "$model" > "$dir/$g-infer-$arch.json" 2>> "$log"
      [ "${MATMUL:-1}" = 1 ] && for shape in 8192,8192,8192 4096,768,3072; do
        timeout 120 "${cmd[@]}" bench matmul --shape "$shape" > "$dir/$g-matmul-$shape.json" 2>> "$log"
      done
      echo "$g infer and matmul done at ${SECONDS} s"
    done
    for p in f32 tf32; do
      timeout 120 python3 bench/torch_bench.py infer "$model" --precision "$p" > "$dir/torch-infer-$arch-$p.json" 2>> "$log"
    done
  fi
  tar czf "$OUT/kernels-$v.tgz" -C "/tmp/kernels-$v" .
  summarize "$dir"
}

# What the default `--gemm auto` picks in VARIANT (a build with --features cublas): GPT-2 small's
# step (20 steps) with CubeCL's stream learnt (cuBLAS), with PRUNELAB_CUBLAS_ORDER=host (Burn's
# kernels: auto never takes host-ordered products) and with a value it does not take (an error).
# Records and logs in $OUT/auto/.
gemm_auto() {
  local v=${VARIANT:-cublas} dir=$OUT/auto n=0
  mkdir -p "$dir"
  unpack_build "$v"
  cuda_libs
  "/tmp/pl-$v" --quiet bench init --arch gpt2-small --out /tmp/gpt2-small > /dev/null
  for setting in "" PRUNELAB_CUBLAS_ORDER=host PRUNELAB_CUBLAS_ORDER=bogus; do
    n=$((n + 1))
    timeout 90 env $setting RUST_LOG=info "/tmp/pl-$v" --kernel-cache "/tmp/kernels-$v" bench train --batch-size 32 \
      --seq-len 128 --steps 20 /tmp/gpt2-small > "$dir/auto-$n.json" 2> "$dir/auto-$n.log"
    echo "[${setting:-no setting}] exit $?: $(grep -o '"gemm":"[^"]*"' "$dir/auto-$n.json")," \
      "$(grep -c 'projection products through cuBLAS' "$dir/auto-$n.log") install(s)"
    grep -h "gemm auto\|error" "$dir/auto-$n.log" | cut -c1-200
  done
}

# Does a build launch the same kernels in every process? VARIANT's GPT-2 small step (f32, 10
# steps after the first) profiled RUNS times, each in a fresh process, and once more unprofiled
# for its throughput: kernel launches per process, by family, in $OUT/launches/. (The fused
# build's throughput varies by ±10 % between processes and not within one; a fusion plan that
# differs between processes would show here as different launch counts.) With GEMM, each of its
# --gemm values in turn (a build with --features cublas; cuBLAS's own kernels are not in CubeCL's
# profile).
launches() {
  local v=${VARIANT:?set VARIANT} dir=$OUT/launches
  mkdir -p "$dir"
  unpack_build "$v"
  [ -n "${GEMM:-}" ] && cuda_libs
  [ -d /tmp/gpt2-small ] || "/tmp/pl-$v" --quiet bench init --arch gpt2-small --out /tmp/gpt2-small > /dev/null
  for r in $(seq "${RUNS:-4}"); do
    for g in ${GEMM:--}; do
      local pl=("/tmp/pl-$v" --quiet --kernel-cache "/tmp/kernels-$v") name=$v-$r
      [ "$g" != - ] && pl+=(--gemm "$g") && name=$v-$g-$r
      mkdir -p "/tmp/prof-$name"
      printf '[profiling.logger]\nlevel = "basic"\nfile = "%s"\n' "/tmp/prof-$name/profile.log" > "/tmp/prof-$name/cubecl.toml"
      (cd "/tmp/prof-$name" && timeout 120 "${pl[@]}" bench train /tmp/gpt2-small \
        --batch-size 32 --seq-len 128 --steps 10 > "$dir/$name-profiled.json" 2>> "$OUT/logs/launches.log")
      python3 bench/profile_summary.py "/tmp/prof-$name/profile.log" --steps 11 --top 12 > "$dir/$name-profile.md"
      echo "$name: $(head -n 1 "$dir/$name-profile.md" | sed 's/.*profile.log: //')"
      timeout 120 "${pl[@]}" bench train /tmp/gpt2-small --batch-size 32 --seq-len 128 \
        --steps 50 > "$dir/$name-train.json" 2>> "$OUT/logs/launches.log"
      echo "$name unprofiled: $(python3 -c "import json,sys;print(round(json.load(open(sys.argv[1]))['samples_per_second'],1),'samples/s')" "$dir/$name-train.json" 2>&1)"
    done
  done
}

# cupti_build LOG: bench/cupti_busy.c as /tmp/libbusy.so (after cuda_libs), its compiler output in LOG.
cupti_build() {
  local include=/usr/local/cuda/include cupti_lib
  cupti_lib=$(echo "$LD_LIBRARY_PATH" | tr ':' '\n' | while read -r d; do ls "$d"/libcupti.so* >/dev/null 2>&1 && echo "$d" && break; done)
  [ -d /usr/local/cuda/extras/CUPTI/include ] && include="$include -I/usr/local/cuda/extras/CUPTI/include"
  [ -n "$cupti_lib" ] && include="$include -I$cupti_lib/../include"
  # shellcheck disable=SC2086
  gcc -shared -fPIC -O2 bench/cupti_busy.c -I$include -L"$cupti_lib" -lcupti -o /tmp/libbusy.so >> "$1" 2>&1 \
    && echo "cupti_busy built against $cupti_lib" || echo "cupti_busy did not build: see $1"
}

# gpu_setup VARIANT LOG: the build unpacked, CUDA's libraries found, the CUPTI counter built
# (its compiler output in LOG), random checkpoints of GPT-2 small and MiniLM's shape in /tmp;
# sets PL to the build's command with its kernel cache.
gpu_setup() {
  unpack_build "$1"
  cuda_libs
  cupti_build "$2"
  PL=("/tmp/pl-$1" --quiet --kernel-cache "/tmp/kernels-$1")
  "${PL[@]}" bench init --arch gpt2-small --out /tmp/gpt2-small > /dev/null
  "${PL[@]}" bench init --arch minilm --out /tmp/minilm-random > /dev/null
}

# Issue 22: prunelab's own CUDA work on CubeCL's stream — `--fused gathers` (the flat optimizer
# step's gradient copies), `--fused norms` (LayerNorm's kernels), `--fused auto` (both) — against
# `--fused burn`, one VARIANT build (cuda,fusion,autotune,cublas), GPT-2 small and MiniLM's shape
# (random weights), `bench train` alternated REPEATS times with torch TF32 (and f32 in round 1)
# beside them; eval with burn and auto; then launches and GPU busy time per step from CUPTI (runs
# of STEPS_A and STEPS_B steps). A cold kernel cache costs minutes of tuning (TUNE_LIMIT each);
# nothing new starts after LIMIT seconds. Records in $OUT/fused/, the kernel cache in $OUT/kernels-VARIANT.tgz.
fused_gpu() {
  local v=${VARIANT:?set VARIANT} dir=$OUT/fused log=$OUT/logs/fused.log limit=${LIMIT:-500}
  mkdir -p "$dir"
  gpu_setup "$v" "$log"
  local pl=("${PL[@]}")
  for arch in gpt2-small minilm-random; do
    for f in auto burn; do
      RUST_LOG=info timeout "${TUNE_LIMIT:-240}" "${pl[@]}" --fused "$f" bench train "/tmp/$arch" --steps 3 \
        > "$dir/tune-$arch-$f.json" 2> "$OUT/logs/tune-$arch-$f.log"
      echo "tuned $arch --fused $f: exit $? at ${SECONDS} s; $(grep -h 'LayerNorm\|gathers\|WARN\|ERROR' "$OUT/logs/tune-$arch-$f.log" | cut -c1-220 | head -n 4)"
    done
  done
  for r in $(seq "${REPEATS:-2}"); do
    for arch in gpt2-small minilm-random; do
      for f in burn gathers norms auto; do
        [ "$SECONDS" -lt "$limit" ] || break 3
        timeout 120 "${pl[@]}" --fused "$f" bench train "/tmp/$arch" --steps 50 > "$dir/$arch-$f-$r.json" 2>> "$log"
      done
      for p in tf32 $([ "$r" = 1 ] && echo f32); do
        timeout 120 python3 bench/torch_bench.py train "/tmp/$arch" --steps 50 --precision "$p" > "$dir/$arch-torch-$p-$r.json" 2>> "$log"
      done
    done
    echo "round $r done at ${SECONDS} s"
  done
  for arch in gpt2-small minilm-random; do
    [ "$SECONDS" -lt "$limit" ] || break
    for f in burn auto; do
      timeout 120 "${pl[@]}" --fused "$f" bench infer "/tmp/$arch" > "$dir/infer-$arch-$f.json" 2>> "$log"
    done
    timeout 120 python3 bench/torch_bench.py infer "/tmp/$arch" --precision tf32 > "$dir/infer-$arch-torch-tf32.json" 2>> "$log"
  done
  echo "eval done at ${SECONDS} s"
  if [ -e /tmp/libbusy.so ]; then
    for arch in gpt2-small minilm-random; do
      for steps in "${STEPS_A:-10}" "${STEPS_B:-30}"; do
        [ "$SECONDS" -lt "$((limit + 40))" ] || break 2
        for f in burn auto; do
          CUDA_INJECTION64_PATH=/tmp/libbusy.so CUPTI_BUSY_OUT="$dir/busy-$arch-$f-$steps.json" timeout 60 \
            "${pl[@]}" --fused "$f" bench train "/tmp/$arch" --steps "$steps" > /dev/null 2>> "$log"
        done
      done
    done
  fi
  summarize "$dir"
  for f in "$dir"/busy-*.json; do [ -e "$f" ] && echo "$(basename "$f" .json): $(cat "$f")"; done
  tar czf "$OUT/kernels-$v.tgz" -C "/tmp/kernels-$v" . && du -sh "$OUT/kernels-$v.tgz"
}

# Which build `cargo xtask reproduce` takes on a GPU (issue 22, item 6): each of VARIANTS
# (.device/bin/prunelab-<v>.xz, default "fused fusion-cublas": with and without CubeCL's
# autotuning), `--fused auto`. First a real fine-tune with dynamic padding from an EMPTY kernel
# cache, as a grid's first cell meets it (a random MiniLM-shaped checkpoint with MiniLM's
# tokenizer, ROWS SST-2 rows, one epoch, 300 dev rows, FT_LIMIT seconds at most): its first step,
# its training samples/s and its wall time. Then `bench train` on GPT-2 small and MiniLM's shape,
# each build from its carried cache (.device/kernels-<v>.tgz) after one tuning run, alternated
# REPEATS times with torch TF32. Records in $OUT/builds/.
builds() {
  local dir=$OUT/builds log=$OUT/logs/builds.log limit=${LIMIT:-480} variants=${VARIANTS:-fused fusion-cublas}
  mkdir -p "$dir"
  cuda_libs
  for v in $variants; do unpack_build "$v"; done
  local first=${variants%% *}
  "/tmp/pl-$first" --quiet bench init --arch minilm --out /tmp/minilm-tok --tokenizer .device/minilm/tokenizer.json > /dev/null
  "/tmp/pl-$first" --quiet bench init --arch gpt2-small --out /tmp/gpt2-small > /dev/null
  "/tmp/pl-$first" --quiet bench init --arch minilm --out /tmp/minilm-random > /dev/null
  for v in $variants; do
    local start=$SECONDS
    timeout "${FT_LIMIT:-150}" "/tmp/pl-$v" --quiet --kernel-cache "/tmp/cold-$v" finetune /tmp/minilm-tok --task sst2 \
      --data-dir "$GLUE" --train-limit "${ROWS:-2000}" --dev-limit 300 --epochs 1 --no-export --no-test-predictions \
      --out "$dir/ft-$v" > "$OUT/logs/ft-$v.log" 2>&1
    echo "finetune $v (empty cache): exit $? in $((SECONDS - start)) s; $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); e=r['epochs'][0]; print('first step', round(r.get('first_step_seconds') or 0,1), 's; train', round(e['samples_per_second'],1), 'samples/s; loss', round(e.get('train_loss') or 0, 6))" "$dir/ft-$v/result.json" 2>&1 | tail -n 1)"
  done
  for v in $variants; do
    for arch in gpt2-small minilm-random; do
      timeout "${TUNE_LIMIT:-150}" "/tmp/pl-$v" --quiet --kernel-cache "/tmp/kernels-$v" bench train "/tmp/$arch" --steps 3 \
        > "$dir/tune-$v-$arch.json" 2>> "$log"
      echo "tuned $v $arch: exit $? at ${SECONDS} s"
    done
  done
  for r in $(seq "${REPEATS:-2}"); do
    for arch in gpt2-small minilm-random; do
      for v in $variants; do
        [ "$SECONDS" -lt "$limit" ] || break 3
        timeout 120 "/tmp/pl-$v" --quiet --kernel-cache "/tmp/kernels-$v" bench train "/tmp/$arch" --steps 50 \
          > "$dir/$arch-$v-$r.json" 2>> "$log"
      done
      timeout 120 python3 bench/torch_bench.py train "/tmp/$arch" --steps 50 --precision tf32 > "$dir/$arch-torch-tf32-$r.json" 2>> "$log"
    done
    echo "round $r done at ${SECONDS} s"
  done
  summarize "$dir"
}

# Issue 22, items 4 and 1, one VARIANT build (default fusion-cublas: cuda,fusion,cublas).
# bf16: `--precision bf16` with cuBLAS multiplying the f32 operands in bf16 (gemm cublas-bf16, no
# casts) against the same build's TF32 and Burn's casts (`--gemm burn --precision bf16`, round 1),
# and torch bf16 autocast / TF32, GPT-2 small and MiniLM's shape (random weights), alternated
# REPEATS times; `bench matmul` in each arithmetic (8192³ and GPT-2's MLP shape). Phases: kernels,
# copies and fills per phase of a step from CUPTI (bench/cupti_busy.c, PRUNELAB_PHASES=1: the
# device is waited for at each mark), prunelab TF32 and torch TF32, runs of STEPS_A and STEPS_B
# steps (their difference is per step; PHASES=0 skips them). Nothing new starts after LIMIT seconds.
# Records in $OUT/precision/.
precision_gpu() {
  local v=${VARIANT:-fusion-cublas} dir=$OUT/precision log=$OUT/logs/precision.log limit=${LIMIT:-470}
  mkdir -p "$dir"
  gpu_setup "$v" "$log"
  local pl=("${PL[@]}")
  for arch in gpt2-small minilm-random; do
    for p in f32 bf16; do
      RUST_LOG=info timeout 120 "${pl[@]}" --precision "$p" bench train "/tmp/$arch" --steps 3 \
        > "$dir/warm-$arch-$p.json" 2> "$OUT/logs/warm-$arch-$p.log"
      echo "warmed $arch $p: exit $? at ${SECONDS} s; $(grep -h 'cuBLAS\|LayerNorm\|WARN\|ERROR' "$OUT/logs/warm-$arch-$p.log" | cut -c1-200 | head -n 3)"
    done
  done
  for shape in 8192 4096,768,3072; do
    local size=(--n "$shape") torch_size=(--n "$shape")
    [ "$shape" != 8192 ] && size=(--shape "$shape") torch_size=()
    for p in f32 bf16; do
      timeout 60 "${pl[@]}" --precision "$p" bench matmul "${size[@]}" > "$dir/matmul-${shape//,/x}-$p.json" 2>> "$log"
    done
    [ "$shape" = 8192 ] && for p in tf32 bf16; do
      timeout 60 python3 bench/torch_bench.py matmul "${torch_size[@]}" --precision "$p" > "$dir/matmul-8192-torch-$p.json" 2>> "$log"
    done
  done
  for r in $(seq "${REPEATS:-3}"); do
    for arch in gpt2-small minilm-random; do
      [ "$SECONDS" -lt "$limit" ] || break 2
      for p in bf16 f32; do
        timeout 120 "${pl[@]}" --precision "$p" bench train "/tmp/$arch" --steps 50 > "$dir/$arch-$p-$r.json" 2>> "$log"
      done
      [ "$r" = 1 ] && timeout 120 "${pl[@]}" --gemm burn --precision bf16 bench train "/tmp/$arch" --steps 50 \
        > "$dir/$arch-bf16-casts-$r.json" 2>> "$log"
      for p in bf16 tf32; do
        timeout 120 python3 bench/torch_bench.py train "/tmp/$arch" --steps 50 --precision "$p" > "$dir/$arch-torch-$p-$r.json" 2>> "$log"
      done
    done
    echo "round $r done at ${SECONDS} s"
  done
  if [ -e /tmp/libbusy.so ] && [ "${PHASES:-1}" != 0 ]; then
    for arch in gpt2-small minilm-random; do
      for steps in "${STEPS_A:-5}" "${STEPS_B:-15}"; do
        [ "$SECONDS" -lt "$((limit + 60))" ] || break 2
        PRUNELAB_PHASES=1 CUDA_INJECTION64_PATH=/tmp/libbusy.so CUPTI_BUSY_OUT="$dir/phases-$arch-prunelab-$steps.json" \
          timeout 60 "${pl[@]}" bench train "/tmp/$arch" --steps "$steps" > /dev/null 2>> "$log"
        PRUNELAB_PHASES=1 CUDA_INJECTION64_PATH=/tmp/libbusy.so CUPTI_BUSY_OUT="$dir/phases-$arch-torch-$steps.json" \
          timeout 60 python3 bench/torch_bench.py train "/tmp/$arch" --steps "$steps" --precision tf32 > /dev/null 2>> "$log"
      done
    done
  fi
  summarize "$dir"
  for f in "$dir"/phases-*.json; do [ -e "$f" ] && echo "$(basename "$f" .json): $(cat "$f")"; done
  tar czf "$OUT/kernels-$v.tgz" -C "/tmp/kernels-$v" . && du -sh "$OUT/kernels-$v.tgz"
}

# Issue 22: a build with a kernel of our own against the build before it — the flat step's
# global norm (squares.cu; mode `norm`, records in $OUT/norm), the embedding gradient
# (embed.cu; mode `embed`), softmax (softmax.cu; mode `softmax`) or the attention's batched products
# (mode `batched`), biases in cuBLASLt's epilogue (mode `bias`) or the gathers' kernel (mode
# `gather`) or residual sums inside LayerNorm (mode `residual`) or GELU and dropout (mode
# `elementwise`), records in $OUT/<mode>. The build
# before (.device/bin/prunelab-before.xz, or OLD_ENV: see before_command) against VARIANT's (default
# fusion-cublas), sharing one kernel
# cache: GPT-2 small and MiniLM's shape (random weights), `bench train` and MiniLM's `bench infer`
# alternated REPEATS times with torch TF32 beside them; then, under the
# CUPTI counter, launches per phase of a step (both builds, GPT-2 small; STEPS_A and STEPS_B
# steps) and kernel time by name for MiniLM's inference (BATCHES_A and BATCHES_B batches, both
# builds and torch; not with SKIP_INFER_NAMES set) and training step (both builds and torch). Nothing new starts after LIMIT seconds.
norm_gpu() {
  local v=${VARIANT:-fusion-cublas} dir=$OUT/${1:-norm} log=$OUT/logs/${1:-norm}.log limit=${LIMIT:-400}
  mkdir -p "$dir"
  gpu_setup "$v" "$log"
  local new=("${PL[@]}") old
  before_command "$v"
  # shellcheck disable=SC2206 # NAME=VALUE words, split on spaces on purpose
  [ -n "${NEW_ENV:-}" ] && new=(env $NEW_ENV "${new[@]}")
  for arch in gpt2-small minilm-random; do
    for b in old new; do
      local -n cmd=$b
      RUST_LOG=info timeout 120 "${cmd[@]}" bench train "/tmp/$arch" --steps 3 > "$dir/warm-$arch-$b.json" 2> "$OUT/logs/warm-$arch-$b.log"
      echo "warmed $arch $b: exit $? at ${SECONDS} s; $(grep -h 'norm\|gathers\|embedding\|GELU\|no algorithm\|biases=\|address lists\|scale and mask\|WARN\|ERROR' "$OUT/logs/warm-$arch-$b.log" | cut -c1-240 | head -n 10)"
    done
    # REQUIRE_LOG: a line the new build must log (its kernels installed), else nothing is measured.
    if [ -n "${REQUIRE_LOG:-}" ] && ! grep -q "$REQUIRE_LOG" "$OUT/logs/warm-$arch-new.log"; then
      echo "the new build did not log '$REQUIRE_LOG':"; tail -n 20 "$OUT/logs/warm-$arch-new.log"; return 1
    fi
  done
  # SKIP_ROUNDS=1: no speed rounds, the CUPTI counts alone (a short call).
  for r in $(seq "${REPEATS:-2}"); do
    [ -z "${SKIP_ROUNDS:-}" ] || break
    for arch in gpt2-small minilm-random; do
      [ "$SECONDS" -lt "$limit" ] || break 2
      timeout 120 "${old[@]}" bench train "/tmp/$arch" --steps 50 > "$dir/$arch-before-$r.json" 2>> "$log"
      timeout 120 "${new[@]}" bench train "/tmp/$arch" --steps 50 > "$dir/$arch-after-$r.json" 2>> "$log"
      timeout 120 python3 bench/torch_bench.py train "/tmp/$arch" --steps 50 --precision tf32 > "$dir/$arch-torch-tf32-$r.json" 2>> "$log"
    done
    # Evaluation alternated too (one run each once said 0.97x where three said 1.11-1.24x).
    infer_round "$dir" "$r" "$log"
    echo "round $r done at ${SECONDS} s"
  done
  summarize "$dir"
  [ -e /tmp/libbusy.so ] || return
  local busy=(env CUDA_INJECTION64_PATH=/tmp/libbusy.so)
  for b in old new; do
    local -n cmd=$b
    for steps in "${STEPS_A:-5}" "${STEPS_B:-15}"; do
      [ "$SECONDS" -lt "$((limit + 60))" ] || break 2
      PRUNELAB_PHASES=1 CUPTI_BUSY_OUT="$dir/phases-gpt2-small-$b-$steps.json" \
        timeout 60 "${busy[@]}" "${cmd[@]}" bench train /tmp/gpt2-small --steps "$steps" > /dev/null 2>> "$log"
    done
  done
  for n in "${BATCHES_A:-10}" "${BATCHES_B:-30}"; do
    [ "$SECONDS" -lt "$((limit + 90))" ] && [ -z "${SKIP_INFER_NAMES:-}" ] || break
    CUPTI_BUSY_OUT="$dir/names-infer-minilm-prunelab-$n.json" timeout 60 "${busy[@]}" "${new[@]}" bench infer /tmp/minilm-random --batches "$n" > /dev/null 2>> "$log"
    CUPTI_BUSY_OUT="$dir/names-infer-minilm-before-$n.json" timeout 60 "${busy[@]}" "${old[@]}" bench infer /tmp/minilm-random --batches "$n" > /dev/null 2>> "$log"
    CUPTI_BUSY_OUT="$dir/names-infer-minilm-torch-$n.json" timeout 60 "${busy[@]}" python3 bench/torch_bench.py infer /tmp/minilm-random --batches "$n" --precision tf32 > /dev/null 2>> "$log"
  done
  for steps in "${STEPS_A:-5}" "${STEPS_B:-15}"; do
    [ "$SECONDS" -lt "$((limit + 120))" ] || break
    CUPTI_BUSY_OUT="$dir/names-train-minilm-prunelab-$steps.json" timeout 60 "${busy[@]}" "${new[@]}" bench train /tmp/minilm-random --steps "$steps" > /dev/null 2>> "$log"
    CUPTI_BUSY_OUT="$dir/names-train-minilm-before-$steps.json" timeout 60 "${busy[@]}" "${old[@]}" bench train /tmp/minilm-random --steps "$steps" > /dev/null 2>> "$log"
    CUPTI_BUSY_OUT="$dir/names-train-minilm-torch-$steps.json" timeout 60 "${busy[@]}" python3 bench/torch_bench.py train /tmp/minilm-random --steps "$steps" --precision tf32 > /dev/null 2>> "$log"
  done
  for f in "$dir"/phases-*.json; do [ -e "$f" ] && echo "$(basename "$f" .json): $(cut -c1-900 "$f")"; done
  ls "$dir"/names-*.json 2>/dev/null
}

# Issue 22: launches alone, for a call with little device time: MiniLM's shape (random weights),
# the build before (OLD_ENV: see before_command) and VARIANT's, CUPTI kernel counts and times by
# name for `bench infer` (BATCHES_A and BATCHES_B batches) and `bench train` (STEPS_A and STEPS_B
# steps), each run logged at info (install checks, address lists). Records in $OUT/counts.
counts_gpu() {
  local v=${VARIANT:-fusion-cublas} dir=$OUT/counts
  mkdir -p "$dir"
  unpack_build "$v"
  cuda_libs
  cupti_build "$OUT/logs/counts.log"
  PL=("/tmp/pl-$v" --quiet --kernel-cache "/tmp/kernels-$v")
  "${PL[@]}" bench init --arch minilm --out /tmp/minilm-random > /dev/null
  local new=("${PL[@]}") old busy=(env CUDA_INJECTION64_PATH=/tmp/libbusy.so)
  before_command "$v"
  for b in new old; do
    local -n cmd=$b
    for n in "${BATCHES_A:-10}" "${BATCHES_B:-30}"; do
      RUST_LOG=info CUPTI_BUSY_OUT="$dir/names-infer-minilm-$b-$n.json" timeout 60 "${busy[@]}" "${cmd[@]}" \
        bench infer /tmp/minilm-random --batches "$n" > /dev/null 2> "$OUT/logs/infer-$b-$n.log"
    done
    for n in "${STEPS_A:-5}" "${STEPS_B:-15}"; do
      RUST_LOG=info CUPTI_BUSY_OUT="$dir/names-train-minilm-$b-$n.json" timeout 60 "${busy[@]}" "${cmd[@]}" \
        bench train /tmp/minilm-random --steps "$n" > /dev/null 2> "$OUT/logs/train-$b-$n.log"
    done
    echo "$b done at ${SECONDS} s"
  done
  grep -h 'address lists\|scale and mask\|WARN\|ERROR' "$OUT"/logs/*-new-*.log | cut -c1-240 | head -n 12
}

# One build (VARIANT, default fusion-cublas) under several settings of its own, to split what each
# changes: ENVS is a list of LABEL=NAME=VALUE[,NAME=VALUE...] words (LABEL alone: no setting).
# Each model is first warmed once (kernels compiled and tuned: a cold cache takes ≈ 50 s a model);
# then REPEATS rounds (default 4), each running every setting — in an order rotated by the round,
# so that none is always first — on MiniLM's shape (`bench train`, 50 steps; `bench infer`) and
# GPT-2 small (`bench train`, 50 steps; GPT2=0 leaves it out); nothing new starts after LIMIT
# seconds (default 480).
# Records in $OUT/envs/, one line a run in $OUT/envs/runs.txt, the kernel cache in
# $OUT/kernels-VARIANT.tgz.
envs_gpu() {
  local v=${VARIANT:-fusion-cublas} dir=$OUT/envs log=$OUT/logs/envs.log limit=${LIMIT:-480}
  local -a settings
  read -r -a settings <<< "${ENVS:?set ENVS}"
  mkdir -p "$dir"
  gpu_setup "$v" "$log"
  local train=(bench train --batch-size 32 --seq-len 128 --steps 50)
  local gpt2=${GPT2:-1}
  for model in minilm-random gpt2-small; do
    [ "$model" = gpt2-small ] && [ "$gpt2" != 1 ] && continue
    RUST_LOG=info timeout 240 "${PL[@]}" bench train "/tmp/$model" --steps 3 > /dev/null 2>> "$log"
    echo "warmed $model: exit $? at ${SECONDS} s"
  done
  local n=${#settings[@]}
  for r in $(seq "${REPEATS:-4}"); do
    for i in $(seq 0 $((n - 1))); do
      [ "$SECONDS" -lt "$limit" ] || break 2
      local word=${settings[$(((i + r) % n))]} label setting
      label=${word%%=*}
      setting=$( [ "$word" = "$label" ] || echo "${word#*=}" | tr ',' ' ')
      # shellcheck disable=SC2086 # the settings split into words
      timeout 60 env $setting "${PL[@]}" "${train[@]}" /tmp/minilm-random > "$dir/train-minilm-$label-$r.json" 2>> "$log"
      # shellcheck disable=SC2086
      timeout 60 env $setting "${PL[@]}" bench infer /tmp/minilm-random > "$dir/infer-minilm-$label-$r.json" 2>> "$log"
      # shellcheck disable=SC2086
      [ "$gpt2" = 1 ] && timeout 60 env $setting "${PL[@]}" "${train[@]}" /tmp/gpt2-small > "$dir/train-gpt2-$label-$r.json" 2>> "$log"
      echo "round $r $label ($setting): $(python3 -c "
import json, sys
def field(f, key, form):
    try: return form.format(json.loads([x for x in open(f) if x.startswith('{')][-1])[key])
    except Exception: return 'failed'
rate = lambda f: field(f, 'samples_per_second', '{:.1f}')
# The training losses, to the last bit: settings that compute the same arithmetic agree on them.
loss = lambda f: field(f, 'train_loss', '{!r}')
gpt2 = ' gpt2 train ' + rate(sys.argv[3]) + ' loss ' + loss(sys.argv[3]) if sys.argv[4] == '1' else ''
print('minilm train', rate(sys.argv[1]), 'infer', rate(sys.argv[2]) + gpt2, 'minilm loss', loss(sys.argv[1]))
" "$dir/train-minilm-$label-$r.json" "$dir/infer-minilm-$label-$r.json" "$dir/train-gpt2-$label-$r.json" "$gpt2") at ${SECONDS} s" | tee -a "$dir/runs.txt"
    done
  done
  python3 bench/envs_paired.py "${settings[0]%%=*}" "$dir/runs.txt" | tee "$dir/paired.txt"
  tar czf "$OUT/kernels-$v.tgz" -C "/tmp/kernels-$v" .
}

# before_command V: sets the caller's `old` array to the build before (.device/bin/prunelab-before.xz)
# with V's kernel cache, or, with OLD_ENV set (NAME=VALUE) and no build before, to V's own build
# run with that variable (one build compared with a setting of its own; several NAME=VALUE words,
# space-separated); with both, the build before run with OLD_ENV. Its callers run their `new`
# build with NEW_ENV (the same form) when it is set.
before_command() {
  local bin=/tmp/pl-$1
  if [ -e .device/bin/prunelab-before.xz ] || [ -z "${OLD_ENV:-}" ]; then
    unpack_build before
    bin=/tmp/pl-before
  fi
  # shellcheck disable=SC2206 # NAME=VALUE words, split on spaces on purpose
  old=(env ${OLD_ENV:-} "$bin" --quiet --kernel-cache "/tmp/kernels-$1")
}

# infer_round DIR R LOG: one round of MiniLM's `bench infer`, the caller's `old` and `new` commands
# (arrays) and torch TF32 reading predictions every 8 batches and after every batch (as
# bench/torch_bench.py did before 2026-12-06, and prunelab's builds before it), into DIR/*-R.json.
infer_round() {
  local dir=$1 r=$2 log=$3
  timeout 60 "${old[@]}" bench infer /tmp/minilm-random > "$dir/infer-minilm-before-$r.json" 2>> "$log"
  timeout 60 "${new[@]}" bench infer /tmp/minilm-random > "$dir/infer-minilm-after-$r.json" 2>> "$log"
  timeout 60 python3 bench/torch_bench.py infer /tmp/minilm-random --precision tf32 > "$dir/infer-minilm-torch-tf32-$r.json" 2>> "$log"
  TORCH_READ_EVERY=1 timeout 60 python3 bench/torch_bench.py infer /tmp/minilm-random --precision tf32 \
    > "$dir/infer-minilm-torch-tf32-every1-$r.json" 2>> "$log"
}

# Issue 22: MiniLM's `bench infer` alone (a short call), the build before (.device/bin/prunelab-before.xz,
# or OLD_ENV: see before_command) against VARIANT's, with torch TF32 beside it reading predictions every 8 batches and after every
# batch, alternated REPEATS times. Records in $OUT/infer.
infer_ab() {
  local v=${VARIANT:-fusion-cublas} dir=$OUT/infer log=$OUT/logs/infer.log
  mkdir -p "$dir"
  unpack_build "$v"
  cuda_libs
  local new=("/tmp/pl-$v" --quiet --kernel-cache "/tmp/kernels-$v") old
  before_command "$v"
  # shellcheck disable=SC2206 # NAME=VALUE words, split on spaces on purpose
  [ -n "${NEW_ENV:-}" ] && new=(env $NEW_ENV "${new[@]}")
  "${new[@]}" bench init --arch minilm --out /tmp/minilm-random > /dev/null
  for b in old new; do
    local -n cmd=$b
    RUST_LOG=info timeout 120 "${cmd[@]}" bench infer /tmp/minilm-random --batches 4 > /dev/null 2> "$OUT/logs/warm-infer-$b.log"
    echo "warmed $b: exit $? at ${SECONDS} s"
  done
  for r in $(seq "${REPEATS:-3}"); do
    infer_round "$dir" "$r" "$log"
    echo "round $r done at ${SECONDS} s"
  done
  summarize "$dir"
}

# The flat optimizer step against the per-tensor one (one VARIANT build, `bench train
# --optimizer`), GPT-2 small and MiniLM's shape (random weights), alternated REPEATS times, with
# torch f32 and TF32 beside them; then each one's GPU busy time and kernels per step from CUPTI's
# activity records (bench/cupti_busy.c injected; two runs of STEPS_A and STEPS_B steps, whose
# difference is per step). A cold kernel cache costs minutes of tuning: TUNE_LIMIT bounds it.
flat() {
  local v=${VARIANT:?set VARIANT} dir=$OUT/flat log=$OUT/logs/flat.log
  mkdir -p "$dir"
  unpack_build "$v"
  cuda_libs
  local pl=("/tmp/pl-$v" --quiet --kernel-cache "/tmp/kernels-$v")
  cupti_build "$log"
  "${pl[@]}" bench init --arch gpt2-small --out /tmp/gpt2-small > /dev/null
  "${pl[@]}" bench init --arch minilm --out /tmp/minilm-random > /dev/null
  for arch in gpt2-small minilm-random; do
    for opt in flat per-tensor; do
      timeout "${TUNE_LIMIT:-240}" "${pl[@]}" bench train "/tmp/$arch" --steps 3 --optimizer "$opt" \
        > "$dir/tune-$arch-$opt.json" 2>> "$log"
      echo "tuned $arch $opt: exit $? at ${SECONDS} s"
    done
  done
  for r in $(seq "${REPEATS:-2}"); do
    for arch in gpt2-small minilm-random; do
      for opt in flat per-tensor; do
        timeout 120 "${pl[@]}" bench train "/tmp/$arch" --steps 50 --optimizer "$opt" > "$dir/$arch-$opt-$r.json" 2>> "$log"
      done
      for p in ${TORCH_PRECISIONS:-f32 tf32}; do
        timeout 120 python3 bench/torch_bench.py train "/tmp/$arch" --steps 50 --precision "$p" > "$dir/$arch-torch-$p-$r.json" 2>> "$log"
      done
    done
    echo "round $r done at ${SECONDS} s"
  done
  if [ -e /tmp/libbusy.so ]; then
    for arch in gpt2-small minilm-random; do
      for steps in "${STEPS_A:-10}" "${STEPS_B:-30}"; do
        for opt in flat per-tensor; do
          CUDA_INJECTION64_PATH=/tmp/libbusy.so CUPTI_BUSY_OUT="$dir/busy-$arch-$opt-$steps.json" timeout 120 \
            "${pl[@]}" bench train "/tmp/$arch" --steps "$steps" --optimizer "$opt" > /dev/null 2>> "$log"
        done
        CUDA_INJECTION64_PATH=/tmp/libbusy.so CUPTI_BUSY_OUT="$dir/busy-$arch-torch-tf32-$steps.json" timeout 120 \
          python3 bench/torch_bench.py train "/tmp/$arch" --steps "$steps" --precision tf32 > /dev/null 2>> "$log"
      done
    done
  fi
  summarize "$dir"
  for f in "$dir"/busy-*.json; do [ -e "$f" ] && echo "$(basename "$f" .json): $(cat "$f")"; done
  # `pack` keeps kernels.tgz beside results.tgz (and archives everything else).
  tar czf "$OUT/kernels.tgz" -C "/tmp/kernels-$v" . && du -sh "$OUT/kernels.tgz"
}

case ${1:-} in
  probe)
    info
    pl probe-cold sst2 --epochs 1 --lr 5e-5 --train-limit 6400 --dev-limit 256
    save_cache
    pl probe-warm sst2 --epochs 1 --lr 5e-5 --train-limit 6400 --dev-limit 256
    pt torch-probe sst2 --epochs 1 --train-limit 6400
    pt torch-probe-f32 sst2 --epochs 1 --train-limit 6400 --precision f32
    ;;
  accuracy)
    info
    PER_RUN_CACHE=1
    RUN_LIMIT=${RUN_LIMIT:-540}  # leave time to pack the results within a 600 s call
    # All runs at once: each is launch-bound and leaves the GPU mostly idle; their times are
    # therefore not benchmark figures (`bench` measures speed, one thing at a time).
    pl sst2-dense sst2 "${RECIPE[@]}" &
    pl sst2-global90 sst2 "${RECIPE[@]}" --scheme global-l1 --amount 0.9 &
    pl cola-dense cola "${RECIPE[@]}" &
    pt torch-sst2-dense sst2 "${RECIPE[@]}" &
    pt torch-sst2-global90 sst2 "${RECIPE[@]}" --amount 0.9 &
    pt torch-cola-dense cola "${RECIPE[@]}" &
    pt torch-cola-global90 cola "${RECIPE[@]}" --amount 0.9 &
    pl cola-global90 cola "${RECIPE[@]}" --scheme global-l1 --amount 0.9 &
    for f in .device/scripts/make_fixtures_*.py; do
      [ -e "$f" ] || continue
      g=${f#.device/scripts/make_fixtures_}; g=${g%.py}
      python3 "$f" --out "$OUT/fixtures-$g" --only $(cat ".device/scripts/groups_$g") > "$OUT/logs/fixtures-$g.log" 2>&1
      echo "fixtures $g: exit $?"; tail -n 15 "$OUT/logs/fixtures-$g.log"
    done
    wait
    cp -r "$KCACHE-sst2-dense/." "$KCACHE/"
    save_cache
    ;;
  launches)
    info
    launches
    ;;
  flat)
    info
    flat
    ;;
  fused)
    info
    fused_gpu
    ;;
  precision)
    info
    precision_gpu
    ;;
  norm)
    info
    norm_gpu
    ;;
  counts)
    counts_gpu
    ;;
  envs)
    info
    envs_gpu
    ;;
  infer)
    info
    infer_ab
    ;;
  embed|softmax|batched|pipeline|bias|gather|residual|elementwise|gradients|lists)
    info
    norm_gpu "$1"
    ;;
  builds)
    info
    builds
    ;;
  gemm)
    info
    gemm
    ;;
  auto)
    info
    gemm_auto
    ;;
  bench)
    # cargo xtask bench. With .device/bin/prunelab-<label>.xz builds (several): a column each, against
    # the same torch runs, each with its kernel cache from .device/kernels-<label>.tgz (all
    # warm, or all cold: then the cold start is measured); else .device/bin/prunelab.xz with
    # .device/kernels.tgz when there is one. REPEATS alternates the fine-tune measures (torch f32 and TF32);
    # MINILM_RANDOM=1 uses a random checkpoint of MiniLM's shape (the carry cannot hold the real
    # one next to several binaries); NO_COMPILE=1 skips torch.compile; with .device/bench-resume/bench.json
    # (an earlier call's) only the parts it did not complete run (--resume). Caches come back as kernels-<label>.tgz.
    info
    builds=() cache=() minilm=(--minilm "$MODEL") compile=(--compile)
    [ -n "${NO_COMPILE:-}" ] && compile=()
    [ -n "${MINILM_RANDOM:-}" ] && minilm=()
    # An earlier call's records (.device/bench-resume/bench.json): measure only the parts it lacks.
    resume=()
    if [ -f .device/bench-resume/bench.json ]; then
      mkdir -p "$OUT/bench" && cp .device/bench-resume/bench.json "$OUT/bench/" && resume=(--resume)
    fi
    if compgen -G ".device/bin/prunelab-*.xz" > /dev/null; then
      warm=1
      for f in .device/bin/prunelab-*.xz; do
        v=${f#.device/bin/prunelab-}; v=${v%.xz}
        xz -dc "$f" > "/tmp/pl-$v" && chmod +x "/tmp/pl-$v" && builds+=(--bin "$v=/tmp/pl-$v")
        echo "build $v: $("/tmp/pl-$v" --version)"
        mkdir -p "/tmp/bench-kernels/$v"
        if [ -f ".device/kernels-$v.tgz" ]; then tar xzf ".device/kernels-$v.tgz" -C "/tmp/bench-kernels/$v"; else warm=; fi
      done
      # xtask bench reads DIR/<label> with several builds, DIR itself with one.
      if [ -n "$warm" ]; then
        if [ ${#builds[@]} -eq 2 ]; then cache=(--kernel-cache "/tmp/bench-kernels/$v"); else cache=(--kernel-cache /tmp/bench-kernels); fi
      fi
    else
      builds=(--bin "cuda=$BIN")
      if [ -f .device/kernels.tgz ]; then cache=(--kernel-cache "$KCACHE"); fi
    fi
    timeout "${BENCH_LIMIT:-3600}" .device/bin/xtask bench "${builds[@]}" "${minilm[@]}" --out "$OUT/bench" --repeats "${REPEATS:-1}" "${compile[@]}" "${cache[@]}" "${resume[@]}" \
      > "$OUT/logs/bench.log" 2>&1
    echo "bench: exit $? at ${SECONDS} s"; tail -n 40 "$OUT/logs/bench.log"
    # The checkpoints bench init wrote (GPT-2 small is 0.5 GB) stay here.
    find "$OUT/bench" -name '*.safetensors' -size +5M -delete
    if [ -d /tmp/bench-kernels ]; then
      for d in /tmp/bench-kernels/*/; do v=$(basename "$d"); tar czf "$OUT/kernels-$v.tgz" -C "$d" .; done
    else
      save_cache
    fi
    ;;
  minilm)
    # issue 6: `cargo xtask reproduce --preset minilm` with --jobs cells at once (over GPUS GPUs), resumable across
    # calls: .device/minilm-run.tgz (the previous call's results) is unpacked first, and the
    # driver is killed (its whole process group) RUN_LIMIT seconds in, so that the finished cells
    # come back; killed cells run again from the start in the next call.
    # RUN_DIR (a gitignored folder such as .run/minilm) keeps the run on the machine, checkpoints
    # and the dense teacher included, so that the next call on the same warm machine resumes
    # killed cells where their last epoch ended; the call returns a copy without the weights.
    info
    RUN=${RUN_DIR:-$OUT/minilm-run}
    mkdir -p "$RUN/kernels"
    if [ -f .device/minilm-run.tgz ]; then tar xzf .device/minilm-run.tgz -C "$RUN"; fi
    if [ -f .device/kernels.tgz ] && [ -z "$(ls -A "$RUN/kernels")" ]; then tar xzf .device/kernels.tgz -C "$RUN/kernels"; fi
    # Alongside (the GPU has room): issue 5's SST-2 check again in bf16 mixed precision.
    if [ -n "${WITH_BF16:-}" ]; then
      PER_RUN_CACHE=1 pl sst2-dense-bf16 sst2 "${RECIPE[@]}" --precision bf16 &
      PER_RUN_CACHE=1 pl sst2-global90-bf16 sst2 "${RECIPE[@]}" --scheme global-l1 --amount 0.9 --precision bf16 &
    fi
    grid=(--preset minilm)
    if [ -n "${GRID:-}" ]; then grid=(--grid "$GRID"); fi
    setsid .device/bin/xtask reproduce "${grid[@]}" --backend cuda --bin "$BIN" --data-dir "$GLUE" \
      --model-dir "sentence-transformers/all-MiniLM-L6-v2=$MODEL" --out "$RUN" --jobs "${JOBS:-12}" --gpus "${GPUS:-1}" \
      > "$OUT/logs/reproduce.log" 2>&1 &
    driver=$!
    (sleep "${RUN_LIMIT:-530}"; kill -KILL -- "-$driver" 2>/dev/null) &
    watcher=$!
    wait "$driver"; echo "reproduce: exit $? after ${SECONDS} s"
    # The watcher's sleep first: a bash subshell handles SIGTERM only once its child exits, and
    # the `wait` below would otherwise hold the call (and the GPU) until RUN_LIMIT.
    pkill -P "$watcher" sleep 2>/dev/null; kill "$watcher" 2>/dev/null
    grep -E "cells in|finished|FAILED|done in" "$OUT/logs/reproduce.log" | tail -n 60
    echo "results: $(find "$RUN/runs" -name result.json | wc -l)"
    rm -rf "$RUN"/kernels-*
    wait
    if [ -n "${WITH_SPEED:-}" ]; then speed_mixed; fi
    tar czf "$OUT/kernels.tgz" -C "$RUN/kernels" .
    if [ -n "${RUN_DIR:-}" ]; then
      mkdir -p "$OUT/minilm-run"
      tar cf - -C "$RUN" --exclude=model --exclude=checkpoint --exclude=kernels . | tar xf - -C "$OUT/minilm-run"
    else
      rm -rf "$RUN/kernels"
    fi
    ;;
  timing)
    # issue 24, item 6: the study's seed grid timed on random checkpoints of its four models'
    # shapes (`prunelab bench init`; GPT-2's tokenizer from .device/tokenizers/gpt2 for all four:
    # its ids fit their vocabularies), ROWS training rows per model × task, JOBS at once.
    info
    T=/tmp/timing-models
    for arch in gpt2-small deberta-base led-base longformer-base; do
      "$BIN" --quiet bench init --arch "$arch" --out "$T/$arch" --tokenizer .device/tokenizers/gpt2/tokenizer.json \
        > "$OUT/logs/init-$arch.json" 2>&1 || { echo "init $arch failed"; cat "$OUT/logs/init-$arch.json"; }
    done
    echo "initialised at ${SECONDS} s"
    grid=(--preset seed)
    if [ -n "${GRID:-}" ]; then grid=(--grid "$GRID"); fi
    timeout "${RUN_LIMIT:-500}" .device/bin/xtask reproduce "${grid[@]}" --timing "${ROWS:-2048}" --backend cuda --bin "$BIN" \
      --data-dir "$GLUE" --model-dir "gpt2=$T/gpt2-small" --model-dir "microsoft/deberta-base=$T/deberta-base" \
      --model-dir "allenai/led-base-16384=$T/led-base" --model-dir "allenai/longformer-base-4096=$T/longformer-base" \
      --out "$OUT/seed" --jobs "${JOBS:-4}" > "$OUT/logs/timing.log" 2>&1
    echo "timing: exit $? after ${SECONDS} s"
    grep -E "cells in|finished|FAILED|done in|error" "$OUT/logs/timing.log" | tail -n 30
    cat "$OUT/seed/timing/TIMING.md" 2>/dev/null
    rm -rf "$OUT/seed/timing/kernels"* "$T"
    ;;
  wgpu)
    # issue 22, item 5: the wgpu backend on this machine's Vulkan driver, beside cuda
    # (.device/bin/prunelab-wgpu.xz; Vulkan's loader from .gl/, see the device README): a real
    # fine-tune of each on 2,000 SST-2 rows (a random MiniLM-shaped checkpoint with MiniLM's
    # tokenizer), then `cargo xtask bench --parts PARTS` with both builds and torch beside.
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -e "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
    info
    W=/tmp/pl-wgpu
    xz -dc .device/bin/prunelab-wgpu.xz > "$W" && chmod +x "$W"
    echo "wgpu build: $("$W" --version 2>&1 | head -n 3)"
    R=/tmp/minilm-random
    "$BIN" --quiet bench init --arch minilm --out "$R" --tokenizer .device/minilm/tokenizer.json > "$OUT/logs/init.json" 2>&1
    for b in cuda wgpu; do
      bin=$BIN; [ "$b" = wgpu ] && bin=$W
      timeout "${FT_LIMIT:-200}" "$bin" --kernel-cache "/tmp/k-$b" finetune "$R" --task sst2 --data-dir "$GLUE" --train-limit 2000 \
        --dev-limit 300 --epochs 1 --no-export --no-test-predictions --out "$OUT/ft-$b" > "$OUT/logs/ft-$b.log" 2>&1
      echo "finetune $b: exit $? at ${SECONDS} s: $(tail -n 2 "$OUT/logs/ft-$b.log" | tr '\n' ' ')"
      python3 -c "import json,sys; r=json.load(open(sys.argv[1])); e=r['epochs'][0]; print('  first step', round(r.get('first_step_seconds') or 0,1), 's; train', round(e['samples_per_second'],1), 'samples/s; eval', round(e['eval_seconds'],2), 's')" "$OUT/ft-$b/result.json" 2>&1
    done
    timeout "${BENCH_LIMIT:-300}" .device/bin/xtask bench --bin "cuda=$BIN" --bin "wgpu=$W" --parts "${PARTS:-minilm}" --out "$OUT/bench" \
      > "$OUT/logs/bench.log" 2>&1
    echo "bench: exit $? at ${SECONDS} s"; tail -n 30 "$OUT/logs/bench.log"
    find "$OUT/bench" -name '*.safetensors' -size +5M -delete
    ;;
  variants)
    info
    variants
    ;;
  alternate)
    info
    alternate
    ;;
  speed)
    info
    speed_mixed
    save_cache
    ;;
  mixed)
    # Issue 5/7 in bf16 mixed precision: the SST-2 recipe (dense and 90 % global L1) in bf16,
    # both runs at once, then the speed table of speed_mixed.
    info
    PER_RUN_CACHE=1
    RUN_LIMIT=${RUN_LIMIT:-370}
    pl sst2-dense-bf16 sst2 "${RECIPE[@]}" --precision bf16 &
    pl sst2-global90-bf16 sst2 "${RECIPE[@]}" --scheme global-l1 --amount 0.9 --precision bf16 &
    wait
    cp -r "$KCACHE-sst2-dense-bf16/." "$KCACHE/"
    speed_mixed
    save_cache
    ;;
  fixtures)
    # bench/device.sh fixtures SCRIPT GROUP... (SCRIPT: a make_fixtures.py, e.g. a branch's copy)
    shift
    script=$1
    shift
    python3 "$script" --out "$OUT/fixtures" --only "$@" > "$OUT/logs/fixtures.log" 2>&1
    echo "fixtures: exit $?"; tail -n 30 "$OUT/logs/fixtures.log"
    ;;
  *)
    echo "usage: bench/device.sh probe|accuracy|bench|minilm|timing|wgpu|speed|variants|alternate|mixed|launches|flat|fused|precision|builds|gemm|auto|fixtures GROUP..." >&2
    exit 2
    ;;
esac
pack
