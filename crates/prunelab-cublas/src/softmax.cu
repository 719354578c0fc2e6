// Softmax along each row of x[rows, cols], one warp a row, and its backward: the formulas Burn's
// softmax and its autodiff compute, exp(x - max) / sum and dx = y * (g - sum(g * y)), each in one
// launch where Burn's ops take a reduction pair and element-wise kernels. The attention's softmax
// takes its scores' scale and mask inside (softmax_masked_forward; its backward the same kernel
// with the scale).
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

// softmax(x * scale + mask) of the attention's scores x[batch, heads, queries, cols]: row r is
// batch r / heads_queries and query r % queries, and its mask row (of a contiguous
// [batch or 1, 1, queries or 1, cols] mask) is batch * mask_batch + query * mask_query, each 0
// where the mask has one.
extern "C" __global__ void softmax_masked_forward(const float* x, const float* mask, int rows, int cols,
                                                  int heads_queries, int queries, int mask_batch, int mask_query,
                                                  float scale, float* y) {
    int row = blockIdx.x * SOFTMAX_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const float* in = x + (size_t)row * cols;
    const float* m = mask + ((size_t)(row / heads_queries) * mask_batch + (size_t)(row % queries) * mask_query) * cols;
    float* out = y + (size_t)row * cols;
    float top = __int_as_float(0xff800000);  // -inf
    for (int c = lane; c < cols; c += 32) top = fmaxf(top, __fadd_rn(__fmul_rn(in[c], scale), m[c]));
    top = warp_max(top);
    float s = 0.0f;
    for (int c = lane; c < cols; c += 32) s += expf(__fadd_rn(__fmul_rn(in[c], scale), m[c]) - top);
    s = warp_sum(s);
    for (int c = lane; c < cols; c += 32) out[c] = expf(__fadd_rn(__fmul_rn(in[c], scale), m[c]) - top) / s;
}

// dx = scale * y * (g - sum(g * y)): softmax's backward (scale 1), or the attention's masked
// softmax's, whose scores were scaled.
extern "C" __global__ void softmax_backward(const float* g, const float* y, int rows, int cols, float scale,
                                            float* dx) {
    int row = blockIdx.x * SOFTMAX_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    size_t base = (size_t)row * cols;
    float dot = 0.0f;
    for (int c = lane; c < cols; c += 32) dot = fmaf(g[base + c], y[base + c], dot);
    dot = warp_sum(dot);
    for (int c = lane; c < cols; c += 32) dx[base + c] = scale * (y[base + c] * (g[base + c] - dot));
}
