import torch, time, sys
torch.manual_seed(0)
for s in sys.argv[1:]:
    m,k,n = map(int, s.split(','))
    a = torch.randn(m,k); w = torch.randn(n,k); bias=torch.randn(n)
    for f,name in ((lambda: a @ w.t(), "a@wT"), (lambda: torch.nn.functional.linear(a,w,bias), "linear")):
        for _ in range(3): f()
        t=time.perf_counter(); it=int(__import__("os").environ.get("IT","30"))
        for _ in range(it): f()
        dt=(time.perf_counter()-t)/it
        print(s, name, round(2*m*k*n/dt/1e9,1), "GFLOP/s")
