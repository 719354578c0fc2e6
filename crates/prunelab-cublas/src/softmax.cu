// Softmax along each row of x[rows, cols], one warp a row, and its backward: the formulas Burn's
// softmax and its autodiff compute, exp(x - max) / sum and dx = y * (g - sum(g * y)), each in one
// launch where Burn's ops take a reduction pair and element-wise kernels.
#define SOFTMAX_WARPS 8

__device__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

__device__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

extern "C" __global__ void softmax_forward(const float* x, int rows, int cols, float* y) {
    int row = blockIdx.x * SOFTMAX_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const float* in = x + (size_t)row * cols;
    float* out = y + (size_t)row * cols;
    float m = __int_as_float(0xff800000);  // -inf
    for (int c = lane; c < cols; c += 32) m = fmaxf(m, in[c]);
    m = warp_max(m);
    float s = 0.0f;
    for (int c = lane; c < cols; c += 32) s += expf(in[c] - m);
    s = warp_sum(s);
    for (int c = lane; c < cols; c += 32) out[c] = expf(in[c] - m) / s;
}

extern "C" __global__ void softmax_backward(const float* g, const float* y, int rows, int cols, float* dx) {
    int row = blockIdx.x * SOFTMAX_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    size_t base = (size_t)row * cols;
    float dot = 0.0f;
    for (int c = lane; c < cols; c += 32) dot = fmaf(g[base + c], y[base + c], dot);
    dot = warp_sum(dot);
    for (int c = lane; c < cols; c += 32) dx[base + c] = y[base + c] * (g[base + c] - dot);
}
