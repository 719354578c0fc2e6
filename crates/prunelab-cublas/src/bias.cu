// A projection's bias added to each row of its `rows x cols` row-major product, in place: what a
// biased product does when cuBLASLt has no algorithm with the bias epilogue for its shape and
// alignment (lt.rs). A grid-stride loop over the elements.
extern "C" __global__ void add_bias(float* out, const float* bias, int rows, int cols) {
    long long total = (long long)rows * cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        out[i] += bias[i % cols];
    }
}

// A bias's gradient: the sum of each column of the output's `rows x cols` gradient, in two stages
// as LayerNorm's parameter gradients (layer_norm.cu): each chunk of `rows_per_chunk` rows summed
// by one block of 32 x 8 threads into `partial[chunk][col]` (grid: column blocks x chunks)...
extern "C" __global__ void column_sums_partial(const float* g, float* partial, int rows, int cols,
                                               int rows_per_chunk) {
    __shared__ float sh[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    int start = blockIdx.y * rows_per_chunk;
    int end = min(rows, start + rows_per_chunk);
    float s = 0.0f;
    if (c < cols) {
        for (int i = start + threadIdx.y; i < end; i += 8) s += g[(size_t)i * cols + c];
    }
    sh[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        float t = 0.0f;
        for (int k = 0; k < 8; ++k) t += sh[k][threadIdx.x];
        partial[(size_t)blockIdx.y * cols + c] = t;
    }
}

// ... then the chunks' partials summed in chunk order: the same sums whatever the launch's timing.
extern "C" __global__ void column_sums_total(const float* partial, float* out, int cols, int chunks) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = 0.0f;
    for (int k = 0; k < chunks; ++k) s += partial[(size_t)k * cols + c];
    out[c] = s;
}
