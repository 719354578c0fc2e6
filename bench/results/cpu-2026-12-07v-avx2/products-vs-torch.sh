#!/usr/bin/env bash
# products-vs-torch.sh BIN ROUNDS: MiniLM's MLP product (1,600 × 384 × 1,536, bias) on two threads, prunelab's
# `bench matmul` at PRUNELAB_CPU_ISA=avx2 and avx512 and torch's `linear` with MKL/ATen capped at AVX2 and not,
# alternated in one call (GFLOP/s; prunelab's product has no bias, torch's has).
bin=$1; rounds=${2:-3}
torch() {
  env "$@" /tmp/tv/bin/python - <<'PY'
import time, torch
a = torch.randn(1600, 384); w = torch.randn(1536, 384); b = torch.randn(1536)
for _ in range(20): torch.nn.functional.linear(a, w, b)
n = 200; t = time.perf_counter()
for _ in range(n): torch.nn.functional.linear(a, w, b)
print(f"{2 * 1600 * 384 * 1536 * n / (time.perf_counter() - t) / 1e9:.1f}")
PY
}
ours() {
  PRUNELAB_CPU_ISA=$1 "$bin" --quiet bench matmul --shape 1600,384,1536 --iters 200 2>/dev/null \
    | python3 -c "import json,sys; print(round(json.loads([l for l in sys.stdin if l.startswith('{')][-1])['tflops'] * 1000, 1))"
}
for r in $(seq "$rounds"); do
  echo "round $r: prunelab-avx2 $(ours avx2) torch-avx2 $(torch MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2) prunelab-avx512 $(ours avx512) torch $(torch X=1)"
done
