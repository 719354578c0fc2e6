
// The sum of the squares of x[0, n), for the flat optimizer step's global norm, in two launches
// of THREADS threads a block with a fixed order of additions (the same bits on every run, on any
// card): block b of `sum_squares_partial`'s grid sums elements b * THREADS + t, then every
// gridDim.x * THREADS further (four at a time where `x` is 16-byte aligned), into partial[b];
// `sum_squares_total`, one block, sums the partials into out[0]. Uses `block_sum` and THREADS
// from layer_norm.cu, which NVRTC compiles in the same unit.
extern "C" __global__ void sum_squares_partial(const float* x, int n, float* partial) {
    __shared__ float scratch[WARPS];
    int stride = gridDim.x * THREADS, first = blockIdx.x * THREADS + threadIdx.x;
    float acc = 0.0f;
    int done = 0;
    if ((((size_t)x) & 15) == 0) {
        const float4* x4 = (const float4*)x;
        int n4 = n / 4;
        for (int i = first; i < n4; i += stride) {
            float4 v = x4[i];
            acc = fmaf(v.x, v.x, acc);
            acc = fmaf(v.y, v.y, acc);
            acc = fmaf(v.z, v.z, acc);
            acc = fmaf(v.w, v.w, acc);
        }
        done = 4 * n4;
    }
    for (int i = done + first; i < n; i += stride) acc = fmaf(x[i], x[i], acc);
    float total = block_sum(acc, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

extern "C" __global__ void sum_squares_total(const float* partial, int blocks, float* out) {
    __shared__ float scratch[WARPS];
    float acc = 0.0f;
    for (int i = threadIdx.x; i < blocks; i += THREADS) acc += partial[i];
    float total = block_sum(acc, scratch);
    if (threadIdx.x == 0) out[0] = total;
}
