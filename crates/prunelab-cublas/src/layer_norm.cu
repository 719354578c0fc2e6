// LayerNorm over the last axis of a row-major [rows, cols] f32 matrix: forward, and backward in
// three kernels (the input's gradient per row; the scale's and shift's gradients as column sums,
// in two deterministic stages). Compiled at run time by NVRTC (`kernels.rs`) and launched on
// CubeCL's stream. Sums run in a fixed order, so results do not depend on scheduling.

#define WARPS 8
#define THREADS (WARPS * 32)

// The sum of `v` over the block, returned to every thread. `scratch` holds WARPS floats.
__device__ float block_sum(float v, float* scratch) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < WARPS; ++w) total += scratch[w];
    return total;
}

// One block's row: mean, then the mean of squared deviations (two passes, as Burn and torch),
// y = (x - mean) / sqrt(var + eps) * gamma + beta; saves mean and 1 / sqrt(var + eps). With a
// residual (`res` not null) the row is x + res, element by element as Burn's add, written to
// `sum` (the backward's input) on the first pass and read back from there.
__device__ void norm_row(const float* x, const float* res, float* sum, const float* gamma, const float* beta,
                         float* y, float* mean_out, float* rstd_out, int cols, float eps) {
    __shared__ float scratch[WARPS];
    size_t base = (size_t)blockIdx.x * cols;
    const float* row = x + base;
    float s = 0.0f;
    if (res != nullptr) {
        for (int j = threadIdx.x; j < cols; j += THREADS) { float v = row[j] + res[base + j]; sum[base + j] = v; s += v; }
        row = sum + base;  // each thread reads back only what it wrote
    } else {
        for (int j = threadIdx.x; j < cols; j += THREADS) s += row[j];
    }
    float mean = block_sum(s, scratch) / cols;
    float q = 0.0f;
    for (int j = threadIdx.x; j < cols; j += THREADS) { float d = row[j] - mean; q += d * d; }
    float var = block_sum(q, scratch) / cols;
    float denom = sqrtf(var + eps);
    float* out = y + base;
    for (int j = threadIdx.x; j < cols; j += THREADS) out[j] = (row[j] - mean) / denom * gamma[j] + beta[j];
    if (threadIdx.x == 0) { mean_out[blockIdx.x] = mean; rstd_out[blockIdx.x] = 1.0f / denom; }
}

// One block per row: the norm of x.
extern "C" __global__ void layer_norm_forward(const float* x, const float* gamma, const float* beta,
                                              float* y, float* mean_out, float* rstd_out,
                                              int cols, float eps) {
    norm_row(x, nullptr, nullptr, gamma, beta, y, mean_out, rstd_out, cols, eps);
}

// One block per row: the norm of x + res, the sum written to `sum`.
extern "C" __global__ void add_layer_norm_forward(const float* x, const float* res, const float* gamma,
                                                  const float* beta, float* y, float* sum, float* mean_out,
                                                  float* rstd_out, int cols, float eps) {
    norm_row(x, res, sum, gamma, beta, y, mean_out, rstd_out, cols, eps);
}

// One block per row: with h = (x - mean) * rstd and gg = g * gamma,
// dx = rstd * (gg - mean(gg) - h * mean(gg * h)).
extern "C" __global__ void layer_norm_backward_input(const float* g, const float* x, const float* gamma,
                                                     const float* mean, const float* rstd, float* dx,
                                                     int cols) {
    __shared__ float scratch[WARPS];
    size_t base = (size_t)blockIdx.x * cols;
    float m = mean[blockIdx.x], r = rstd[blockIdx.x];
    float a = 0.0f, b = 0.0f;
    for (int j = threadIdx.x; j < cols; j += THREADS) {
        float gg = g[base + j] * gamma[j];
        a += gg;
        b += gg * (x[base + j] - m) * r;
    }
    float mean_gg = block_sum(a, scratch) / cols;
    float mean_ggh = block_sum(b, scratch) / cols;
    for (int j = threadIdx.x; j < cols; j += THREADS) {
        float h = (x[base + j] - m) * r;
        dx[base + j] = r * (g[base + j] * gamma[j] - mean_gg - h * mean_ggh);
    }
}

// Stage 1 of the scale's and shift's gradients: block (32, 8) covers 32 columns and the rows of
// chunk blockIdx.y; partial[chunk][c] = sum of g * h, partial[chunks + chunk][c] = sum of g.
extern "C" __global__ void layer_norm_backward_partial(const float* g, const float* x, const float* mean,
                                                       const float* rstd, float* partial,
                                                       int rows, int cols, int rows_per_chunk) {
    __shared__ float sh[2][8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    int start = blockIdx.y * rows_per_chunk;
    int end = min(rows, start + rows_per_chunk);
    float dg = 0.0f, db = 0.0f;
    if (c < cols) {
        for (int i = start + threadIdx.y; i < end; i += 8) {
            float gi = g[(size_t)i * cols + c];
            dg += gi * (x[(size_t)i * cols + c] - mean[i]) * rstd[i];
            db += gi;
        }
    }
    sh[0][threadIdx.y][threadIdx.x] = dg;
    sh[1][threadIdx.y][threadIdx.x] = db;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        float sg = 0.0f, sb = 0.0f;
        for (int k = 0; k < 8; ++k) { sg += sh[0][k][threadIdx.x]; sb += sh[1][k][threadIdx.x]; }
        partial[(size_t)blockIdx.y * cols + c] = sg;
        partial[(size_t)(gridDim.y + blockIdx.y) * cols + c] = sb;
    }
}

// Stage 2: dgamma[c] and dbeta[c] as the sums of the chunks' partials, in chunk order.
extern "C" __global__ void layer_norm_backward_params(const float* partial, float* dgamma, float* dbeta,
                                                      int cols, int chunks) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float sg = 0.0f, sb = 0.0f;
    for (int k = 0; k < chunks; ++k) { sg += partial[(size_t)k * cols + c]; sb += partial[(size_t)(chunks + k) * cols + c]; }
    dgamma[c] = sg;
    dbeta[c] = sb;
}
