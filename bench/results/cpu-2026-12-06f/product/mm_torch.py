"""torch's `a @ b` on MiniLM's product shapes, the same protocol as cpu_gemm.rs: best of 7 rounds
of 8 products after 3 warm-up products, GFLOP/s. Usage: python mm_torch.py THREADS."""
import sys, time
import torch
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
line = ""
for (m, k, n, ta) in [(4096, 384, 384, False), (4096, 384, 1536, False), (4096, 1536, 384, False), (384, 4096, 384, True), (1536, 4096, 384, True)]:
    a = torch.randn(k, m).t() if ta else torch.randn(m, k)
    b = torch.randn(k, n)
    for _ in range(3): a @ b
    best = 0.0
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(8): a @ b
        best = max(best, 2 * m * k * n * 8 / (time.perf_counter() - t) / 1e9)
    line += f"{m}x{k}x{n}{' (A transposed)' if ta else ''} {best:.0f}  "
print(f"torch threads {threads}: {line}")
