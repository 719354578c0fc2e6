#!/usr/bin/env bash
# Kill and resume: runs a small grid once without interruption, then again while SIGKILLing it at
# KILLS random moments (restarting it after each), and checks that the second ends with the same
# results as the first and that no file it left is partial or corrupt.
#
#   scripts/kill_resume.sh --model-dir DIR --data-dir GLUE [--kills 20] [--work DIR] [--seed N]
#                          [--no-hub] [--reuse-ref] [--check-only]
#
# By default the model is not read from DIR directly: scripts/fake_hub.py serves DIR's files as
# the Hub repository sentence-transformers/all-MiniLM-L6-v2 (throttled to 3 MB/s, so the 45 MB
# download takes ~15 s), and each run downloads it through prunelab's Hub path (hf-hub, HF_ENDPOINT)
# into a Hugging Face cache of its own: kills land in the download too, and the cache is checked
# at the end (no partial file, every blob's sha256 equal to its name). --no-hub passes
# --model-dir instead. --reuse-ref keeps the uninterrupted run of an earlier call in the same
# work dir; --check-only runs only the final checks on the work dir of an earlier call.
#
# DIR is a BERT-family checkpoint directory (e.g. ../shared/models/all-MiniLM-L6-v2), GLUE the
# GLUE TSV directory. The grid (kill-resume.toml, written into the work dir) is the quick preset
# made smaller and wider: MiniLM, SST-2 and CoLA, dense plus global L1, layer-wise L1 and random
# at 50 and 90 % (14 cells), 32 training and 32 dev rows, 2 epochs (a kill in the second resumes from the
# first one's checkpoint) — short cells, so that the
# kills land in every phase of many cells.
#
# Half of the kills hit the whole process group (driver and the running `prunelab finetune`, as a
# machine losing power would); the other half hit the driver alone (as `kill -9 PID` or the OOM
# killer would), leaving its child running: the next driver must wait for that child's lock and
# use its result. Kill moments are drawn uniformly between 0.1 and 1.1 times the mean cell time of
# the uninterrupted run (the first one, with the fake Hub, between 2 and 12 s: mid-download), so
# kills land in every phase (start-up, download, inspect, load, prune, train,
# evaluate, writing results, report) and the grid still advances between them. A run that ends
# before its moment is not a kill: it is restarted; if the whole grid finishes before KILLS kills
# have landed, the script says so and fails.
#
# Output: a line per kill (moment, what was killed, the phase the logs were in), then the checks.
# Exit status 0 only if every check holds.
set -euo pipefail

KILLS=20
WORK=${TMPDIR:-/tmp}/prunelab-kill-resume
SEED=$RANDOM
MODEL_DIR=
DATA_DIR=
HUB=1
REUSE_REF=
CHECK_ONLY=
while [ $# -gt 0 ]; do
  case $1 in
    --kills) KILLS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --model-dir) MODEL_DIR=$2; shift 2 ;;
    --data-dir) DATA_DIR=$2; shift 2 ;;
    --no-hub) HUB=; shift ;;
    --reuse-ref) REUSE_REF=1; shift ;;
    --check-only) CHECK_ONLY=1; shift ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "kill_resume.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -f "$MODEL_DIR/config.json" ] || { echo "kill_resume.sh: --model-dir $MODEL_DIR has no config.json" >&2; exit 2; }
[ -f "$DATA_DIR/SST-2/train.tsv" ] || { echo "kill_resume.sh: --data-dir $DATA_DIR has no SST-2/train.tsv" >&2; exit 2; }
MODEL_DIR=$(cd "$MODEL_DIR" && pwd)
DATA_DIR=$(cd "$DATA_DIR" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RANDOM=$SEED
echo "kill_resume: seed $SEED, $KILLS kills, work dir $WORK"

if [ -z "$CHECK_ONLY" ]; then
cd "$ROOT"
cargo build --release --locked -p prunelab-cli -q
cargo build --release --locked -p xtask -q
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/prunelab
XTASK=$TARGET/release/xtask

# --reuse-ref keeps an uninterrupted run already in the work dir (and its time).
if [ -n "$REUSE_REF" ] && [ -f "$WORK/ref.seconds" ]; then
  rm -rf "$WORK/killed" "$WORK/killed-hf" "$WORK/killed.log"
else
  rm -rf "$WORK"
  REUSE_REF=
fi
mkdir -p "$WORK"
cat > "$WORK/kill-resume.toml" <<'EOF'
name = "kill-resume"
models = ["sentence-transformers/all-MiniLM-L6-v2"]
tasks = ["sst2", "cola"]
amounts = [0.5, 0.9]
[[arms]]
scheme = "global-l1"
[[arms]]
scheme = "layer-l1"
[[arms]]
scheme = "random"
[train]
epochs = 2
lr = 1e-4
batch_size = 16
max_length = 32
train_limit = 32
dev_limit = 32
EOF

MODEL_ARGS=(--model-dir "sentence-transformers/all-MiniLM-L6-v2=$MODEL_DIR")
if [ -n "$HUB" ]; then
  python3 "$ROOT/scripts/fake_hub.py" --dir "$MODEL_DIR" --repo sentence-transformers/all-MiniLM-L6-v2 \
    --rate 3000000 > "$WORK/fake_hub.out" 2> "$WORK/fake_hub.log" &
  HUB_PID=$!
  trap 'kill $HUB_PID 2>/dev/null' EXIT
  for _ in $(seq 50); do grep -q "serving on" "$WORK/fake_hub.out" 2>/dev/null && break; sleep 0.1; done
  export HF_ENDPOINT="http://127.0.0.1:$(sed -n 's/serving on //p' "$WORK/fake_hub.out")"
  unset HF_HUB_OFFLINE HF_HUB_CACHE
  MODEL_ARGS=()
  echo "model served by scripts/fake_hub.py at $HF_ENDPOINT (3 MB/s)"
fi

reproduce() { # OUT: one driver run in the background, in a process group of its own (its id in
  # PID), logging to OUT.log; with the fake Hub, OUT's own Hugging Face cache is OUT-hf
  HF_HOME="$WORK/$1-hf" setsid "$XTASK" reproduce --grid "$WORK/kill-resume.toml" --backend ndarray \
    --bin "$BIN" --data-dir "$DATA_DIR" "${MODEL_ARGS[@]}" --out "$WORK/$1" >> "$WORK/$1.log" 2>&1 &
  PID=$!
}

# 1. The uninterrupted run.
if [ -z "$REUSE_REF" ]; then
  start=$(date +%s.%N)
  reproduce ref
  wait "$PID" || { echo "the uninterrupted run failed; see $WORK/ref.log" >&2; exit 1; }
  echo "$(date +%s.%N) - $start" | bc > "$WORK/ref.seconds"
fi
ref_s=$(cat "$WORK/ref.seconds")
cells=$(find "$WORK/ref/runs" -name result.json | wc -l)
cell_s=$(echo "$ref_s / $cells" | bc -l)
printf 'uninterrupted: %d cells in %.1f s (%.1f s per cell)\n' "$cells" "$ref_s" "$cell_s"

# 2. The killed run: KILLS kills, then one run to the end.
export RUST_LOG=${RUST_LOG:-info}
phase() { # the last thing the driver or a cell said
  local last
  last=$(tail -n 1 "$WORK/killed.log" 2>/dev/null | tr -d '\r' | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-110)
  echo "${last:-(nothing yet)}"
}
k=0
errors=0
while [ "$k" -lt "$KILLS" ]; do
  reproduce killed
  pid=$PID
  if [ "$k" -eq 0 ] && [ -n "$HUB" ]; then
    # The first kill lands in the download (45 MB at 3 MB/s: ~15 s from the start).
    delay=$(echo "2 + 10 * $RANDOM / 32767" | bc -l)
  else
    delay=$(echo "$cell_s * (0.1 + 1.0 * $RANDOM / 32767)" | bc -l)
  fi
  sleep "$delay"
  if ! kill -0 "$pid" 2>/dev/null; then
    if wait "$pid"; then
      echo "the grid finished after $k kills, before $KILLS could land (a larger grid is needed)" >&2
      exit 1
    fi
    errors=$((errors + 1))
    [ "$errors" -lt 3 ] || { echo "three runs failed on their own; see $WORK/killed.log" >&2; exit 1; }
    printf '  (a run ended before %.1f s, with an error; restarting)\n' "$delay"
    continue
  fi
  k=$((k + 1))
  if [ $((k % 2)) -eq 1 ]; then
    what="process group"
    kill -KILL -- "-$pid" 2>/dev/null || true
  else
    what="driver only"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  done_now=$( (grep -l '"finished"' "$WORK"/killed/runs/*/*/*/*/*/result.json 2>/dev/null || true) | wc -l)
  printf 'kill %2d at %5.1f s (%s; %d of %d cells finished): %s\n' "$k" "$delay" "$what" "$done_now" "$cells" "$(phase)"
  echo "--- SIGKILL ($what) ---" >> "$WORK/killed.log"
done
reproduce killed
wait "$PID" || { echo "the final resumed run failed; see $WORK/killed.log" >&2; exit 1; }
# A child orphaned by the last driver-only kill has been waited for by the final driver.

fi

# 3. The checks.
python3 - "$WORK/ref" "$WORK/killed" "$WORK/killed-hf" <<'EOF'
import hashlib, json, pathlib, re, struct, sys

ref, killed, cache = map(pathlib.Path, sys.argv[1:4])
TIMING = re.compile(r"second|latency|throughput|per_s|unix|_ms|commit")
problems = []

def strip(v):
    if isinstance(v, str):
        # Each run has a Hugging Face cache of its own: paths into it differ by design.
        return v.replace(str(ref) + "-hf", "HF").replace(str(killed) + "-hf", "HF")
    if isinstance(v, dict):
        # A cell resumed from its epoch checkpoint says so; what it computed must not differ.
        return {k: strip(x) for k, x in v.items() if not TIMING.search(k) and k != "resumed_after_epoch"}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v

def check_safetensors(path):
    data = path.read_bytes()
    if len(data) < 8:
        return "shorter than its header length"
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + n])
    except Exception as e:
        return f"header is not JSON ({e})"
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != len(data):
        return f"{len(data)} bytes, the header says {8 + n + end}"
    return None

def results(root):
    out = {}
    for f in sorted(root.glob("runs/**/result.json")):
        out[str(f.relative_to(root))] = json.loads(f.read_text())
    return out

checked = 0
for f in sorted(killed.rglob("*")):
    if "kernels" in f.parts:
        continue
    if not f.is_file() or f.suffix == ".log" or f.name == ".lock":
        continue
    checked += 1
    if any(".tmp" in part for part in f.relative_to(killed).parts):
        problems.append(f"temporary file left: {f}")
    elif "checkpoint" in f.relative_to(killed).parts:
        problems.append(f"a finished cell's epoch checkpoint is left: {f}")
    elif f.suffix == ".json":
        try:
            json.loads(f.read_text())
        except Exception as e:
            problems.append(f"{f}: not valid JSON ({e})")
    elif f.suffix == ".safetensors":
        err = check_safetensors(f)
        if err:
            problems.append(f"{f}: {err}")
    elif f.suffix in (".csv", ".md", ".svg", ".png") and f.stat().st_size == 0:
        problems.append(f"{f}: empty")

# The Hugging Face cache the killed runs downloaded into (absent with --no-hub): no partial
# download left, every blob's content hashes to its name (the ETag the Hub gave: its sha256).
blobs = [f for f in cache.glob("hub/*/blobs/*") if f.is_file() and f.suffix != ".lock"]
for f in blobs:
    if f.name.endswith(".incomplete"):
        problems.append(f"partial download left: {f}")
    elif hashlib.sha256(f.read_bytes()).hexdigest() != f.name:
        problems.append(f"{f}: content does not match its sha256 name")
for f in cache.glob("hub/*/snapshots/*/*"):
    if not f.exists():
        problems.append(f"{f}: a snapshot link to a missing blob")
if cache.exists():
    print(f"Hugging Face cache: {len(blobs)} blobs, all complete and matching their sha256")

a, b = results(ref), results(killed)
if a.keys() != b.keys():
    problems.append(f"cells differ: {sorted(a.keys() ^ b.keys())}")
equal = 0
for k in sorted(a.keys() & b.keys()):
    if strip(a[k]) == strip(b[k]):
        equal += 1
    else:
        problems.append(f"{k}: results differ")
def safetensors_content(path):
    """Header (metadata included, as parsed: its key order is not fixed) and data bytes."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]

masks = 0
for f in sorted(ref.glob("runs/**/masks.safetensors")):
    g = killed / f.relative_to(ref)
    masks += 1
    if not g.is_file() or safetensors_content(g) != safetensors_content(f):
        problems.append(f"{g}: not equal to the uninterrupted run's (tensors, header and metadata)")
print(f"files checked: {checked}; cells with equal results (metrics, per-epoch loss and evaluation, sparsity, "
      f"pruning): {equal} of {len(a)}; mask files equal (tensors bit for bit, header, metadata): {masks}")
print(f"status: {[v['status'] for v in b.values()]}")
resumed = sorted("/".join(k.split("/")[2:6]) for k, v in b.items() if "resumed_after_epoch" in v)
print(f"cells resumed after their first epoch from a checkpoint: {len(resumed)} {resumed}")
print("main metrics:", {"/".join(k.split("/")[2:6]): round(v["metrics"]["main"], 6) for k, v in b.items()})
if problems:
    print("PROBLEMS:")
    for p in problems:
        print("  " + p)
    sys.exit(1)
print("kill_resume: OK: the killed-and-resumed grid equals the uninterrupted one; no partial or corrupt file")
EOF
