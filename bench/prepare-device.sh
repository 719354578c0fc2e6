#!/usr/bin/env bash
# Fills the gitignored `.device/` folder that bench/device.sh reads on the GPU machine, from
# `../shared/` (data, tokenizers, the MiniLM checkpoint) and release builds made here. Everything
# travels xz-compressed: the carry is 64 MiB for the whole tree (see bench/NOTES.md, "GPU runs").
#
#   bash bench/prepare-device.sh data    # glue TSVs, GPT-2's tokenizer, MiniLM (config, tokenizer, fp16 weights)
#   bash bench/prepare-device.sh cuda    # .device/bin/prunelab.xz       (--features cuda)
#   bash bench/prepare-device.sh wgpu    # .device/bin/prunelab-wgpu.xz  (--features wgpu)
#   bash bench/prepare-device.sh xtask   # .device/bin/xtask.xz
#
# Binaries are built with the checkout's own target dir, so run one build at a time (2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
D=.device
mkdir -p "$D/bin"

pack() { # pack SRC DEST.xz: SRC xz-compressed into DEST (skipped when DEST is newer than SRC)
  if [ "$2" -nt "$1" ]; then return; fi
  xz -T1 -6 -c "$1" > "$2.tmp" && mv "$2.tmp" "$2"
  echo "$2: $(du -h "$2" | cut -f1)"
}

binary() { # binary FEATURE NAME
  cargo build --release -p prunelab-cli --no-default-features --features "$1"
  cp target/release/prunelab "/tmp/prunelab-$1" && strip "/tmp/prunelab-$1"
  pack "/tmp/prunelab-$1" "$D/bin/$2.xz"
}

case "${1:?data, cuda, wgpu or xtask}" in
  data)
    for task in SST-2 CoLA; do
      mkdir -p "$D/glue/$task"
      for split in train dev test; do pack "$SHARED/data/glue/$task/$split.tsv" "$D/glue/$task/$split.tsv.xz"; done
    done
    mkdir -p "$D/tokenizers/gpt2" "$D/minilm"
    pack "$SHARED/data/tokenizers/gpt2/tokenizer.json" "$D/tokenizers/gpt2/tokenizer.json.xz"
    cp "$SHARED/models/all-MiniLM-L6-v2/config.json" "$SHARED/models/all-MiniLM-L6-v2/tokenizer.json" "$D/minilm/"
    pack "$SHARED/models/all-MiniLM-L6-v2/model.fp16.safetensors" "$D/minilm/model.fp16.safetensors.xz"
    ;;
  cuda) binary cuda prunelab ;;
  wgpu) binary wgpu prunelab-wgpu ;;
  xtask)
    cargo build --release --target-dir target/xtask -p xtask
    cp target/xtask/release/xtask /tmp/xtask && strip /tmp/xtask
    pack /tmp/xtask "$D/bin/xtask.xz"
    ;;
  *) echo "error: unknown part '$1' (data, cuda, wgpu or xtask)" >&2; exit 2 ;;
esac
du -sh "$D"
