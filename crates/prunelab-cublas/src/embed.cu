// The gradient of an embedding table, out[vocab, dim], from the gradient of its n looked-up rows
// g[n, dim] and their ids, in four launches with a fixed order of additions (the same bits on
// every run): each id's rows are summed in token order, in pieces of EMBED_CHUNK sorted rows,
// then the pieces in order.
//
// 1. embed_zero: out = 0.
// 2. embed_sort: one block sorts the keys (id << tbits | token) in shared memory (bitonic), so
//    that each id's tokens are contiguous and in token order; ids outside [0, vocab) become
//    EMBED_NONE, which sorts last and is skipped. n <= EMBED_MAX_ROWS, and the host checks that
//    ids and tokens fit in 31 bits together, so that no key equals EMBED_NONE.
// 3. embed_partial: block (chunk, column tile) sums the chunk's rows of each id in order and
//    writes the sum at the row where that id's run in the chunk ends: partial[row, dim].
// 4. embed_rows: the block of an id's first sorted row adds up the id's pieces, chunk by chunk,
//    and writes the id's row of out.
#define EMBED_MAX_ROWS 8192
#define EMBED_CHUNK 32
#define EMBED_NONE 0xFFFFFFFFu

extern "C" __global__ void embed_zero(float* out, int n) {
    int stride = gridDim.x * blockDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = 0.0f;
}

extern "C" __global__ void embed_sort(const int* ids, int n, int vocab, int tbits, unsigned* sorted) {
    __shared__ unsigned keys[EMBED_MAX_ROWS];
    int size = 2;
    while (size < n) size <<= 1;
    for (int i = threadIdx.x; i < size; i += blockDim.x) {
        unsigned key = EMBED_NONE;
        if (i < n && ids[i] >= 0 && ids[i] < vocab) key = ((unsigned)ids[i] << tbits) | (unsigned)i;
        keys[i] = key;
    }
    __syncthreads();
    for (int k = 2; k <= size; k <<= 1) {
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < size; i += blockDim.x) {
                int l = i ^ j;
                if (l > i) {
                    unsigned a = keys[i], b = keys[l];
                    if ((a > b) == ((i & k) == 0)) {
                        keys[i] = b;
                        keys[l] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
    for (int i = threadIdx.x; i < n; i += blockDim.x) sorted[i] = keys[i];
}

extern "C" __global__ void embed_partial(const float* g, const unsigned* sorted, int n, int dim, int tbits,
                                         float* partial) {
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    int first = blockIdx.x * EMBED_CHUNK, last = min(first + EMBED_CHUNK, n);
    unsigned token_mask = (1u << tbits) - 1u;
    float acc = 0.0f;
    for (int i = first; i < last; ++i) {
        unsigned key = sorted[i];
        if (key == EMBED_NONE) break;
        acc += g[(size_t)(key & token_mask) * dim + c];
        if (i + 1 == last || (sorted[i + 1] >> tbits) != (key >> tbits)) {
            partial[(size_t)i * dim + c] = acc;
            acc = 0.0f;
        }
    }
}

extern "C" __global__ void embed_rows(const float* partial, const unsigned* sorted, int n, int dim, int tbits,
                                      float* out) {
    int i = blockIdx.x;
    unsigned key = sorted[i];
    if (key == EMBED_NONE) return;
    unsigned id = key >> tbits;
    if (i > 0 && (sorted[i - 1] >> tbits) == id) return;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float acc = 0.0f;
        for (int chunk = i / EMBED_CHUNK; chunk * EMBED_CHUNK < n; ++chunk) {
            int start = max(chunk * EMBED_CHUNK, i), last = min((chunk + 1) * EMBED_CHUNK, n) - 1;
            if ((sorted[start] >> tbits) != id) break;
            int end = last;
            if ((sorted[last] >> tbits) != id) {
                end = start;
                while ((sorted[end + 1] >> tbits) == id) ++end;
            }
            acc += partial[(size_t)end * dim + c];
            if (end != last) break;
        }
        out[(size_t)id * dim + c] = acc;
    }
}
