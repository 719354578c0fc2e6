// Softmax along each row of x[rows, cols], one warp a row, and its backward: the formulas Burn's
// softmax and its autodiff compute, exp(x - max) / sum and dx = y * (g - sum(g * y)), each in one
// launch where Burn's ops take a reduction pair and element-wise kernels. The attention's softmax
// takes its scores' scale and mask inside (softmax_masked_forward; its backward the same kernel
// with the scale), and in training the dropout of its output too (softmax_masked_dropout_forward,
// softmax_dropout_backward; the mask drawn by elementwise.cu's dropout_keeps, which comes first in
// the source).
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

// One row of the attention's scores x[batch, heads, queries, cols] for softmax(x * scale + mask):
// row r is batch r / heads_queries and query r % queries, and its mask row (of a contiguous
// [batch or 1, 1, queries or 1, cols] mask) is batch * mask_batch + query * mask_query, each 0
// where the mask has one; top and sum are the row's max of the masked scores and the sum of their
// exp(score - top), over the warp.
struct MaskedRow {
    const float* in;
    const float* m;
    float scale, top, sum;
};

__device__ float masked_score(const MaskedRow& r, int c) { return __fadd_rn(__fmul_rn(r.in[c], r.scale), r.m[c]); }

__device__ MaskedRow masked_row(const float* x, const float* mask, int row, int cols, int heads_queries, int queries,
                                int mask_batch, int mask_query, float scale, int lane) {
    MaskedRow r;
    r.in = x + (size_t)row * cols;
    r.m = mask + ((size_t)(row / heads_queries) * mask_batch + (size_t)(row % queries) * mask_query) * cols;
    r.scale = scale;
    float top = __int_as_float(0xff800000);  // -inf
    for (int c = lane; c < cols; c += 32) top = fmaxf(top, masked_score(r, c));
    r.top = warp_max(top);
    float s = 0.0f;
    for (int c = lane; c < cols; c += 32) s += expf(masked_score(r, c) - r.top);
    r.sum = warp_sum(s);
    return r;
}

// The softmax's value at column c of the row.
__device__ float masked_probability(const MaskedRow& r, int c) { return expf(masked_score(r, c) - r.top) / r.sum; }

// softmax(x * scale + mask) of the attention's scores, one warp a row (MaskedRow).
extern "C" __global__ void softmax_masked_forward(const float* x, const float* mask, int rows, int cols,
                                                  int heads_queries, int queries, int mask_batch, int mask_query,
                                                  float scale, float* y) {
    int row = blockIdx.x * SOFTMAX_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    MaskedRow r = masked_row(x, mask, row, cols, heads_queries, queries, mask_batch, mask_query, scale, lane);
    float* out = y + (size_t)row * cols;
    for (int c = lane; c < cols; c += 32) out[c] = masked_probability(r, c);
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

// softmax_masked_forward's y (kept for the backward pass) and, in dropped, y after dropout under
// the layers' rule (element row * cols + c kept: y * keep_scale, else 0): the dropout kernel's
// output bit for bit, without its launch and its read of y.
extern "C" __global__ void softmax_masked_dropout_forward(const float* x, const float* mask, int rows, int cols,
                                                          int heads_queries, int queries, int mask_batch,
                                                          int mask_query, float scale, unsigned long long seed,
                                                          unsigned int threshold, float keep_scale, float* y,
                                                          float* dropped) {
    int row = blockIdx.x * SOFTMAX_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    MaskedRow r = masked_row(x, mask, row, cols, heads_queries, queries, mask_batch, mask_query, scale, lane);
    size_t base = (size_t)row * cols;
    for (int c = lane; c < cols; c += 32) {
        float v = masked_probability(r, c);
        y[base + c] = v;
        dropped[base + c] = dropout_keeps(seed, base + c, threshold) ? v * keep_scale : 0.0f;
    }
}

// The backward of softmax_masked_dropout_forward: the dropout's backward (g * keep_scale where the
// rule kept the element, else 0: the dropout kernel on g) and softmax_backward's of that, in one
// launch; the same arithmetic as the two kernels in turn.
extern "C" __global__ void softmax_dropout_backward(const float* g, const float* y, int rows, int cols, float scale,
                                                    unsigned long long seed, unsigned int threshold,
                                                    float keep_scale, float* dx) {
    int row = blockIdx.x * SOFTMAX_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    size_t base = (size_t)row * cols;
    float dot = 0.0f;
    for (int c = lane; c < cols; c += 32) {
        float kept = dropout_keeps(seed, base + c, threshold) ? g[base + c] * keep_scale : 0.0f;
        dot = fmaf(kept, y[base + c], dot);
    }
    dot = warp_sum(dot);
    for (int c = lane; c < cols; c += 32) {
        float kept = dropout_keeps(seed, base + c, threshold) ? g[base + c] * keep_scale : 0.0f;
        dx[base + c] = scale * (y[base + c] * (kept - dot));
    }
}
