
// The flat optimizer step's gather (gather.rs) in one launch per GATHER_PARTS parts: the spans
// [start[p], start[p + 1]) tile the launch's stretch of `out` in order; span p holds len[p]
// elements of src[p] and `fill` after them (padding, or a parameter without a gradient: src
// null, len 0). Block b writes the GATHER_TILE elements from start[0] + b * GATHER_TILE, each
// thread every THREADS-th: one binary search for the block's first span, then a walk forward.
// The table travels as a kernel parameter (under the 4 KiB every card takes), as torch's
// multi_tensor_apply passes its tensor lists. A copy: the same bits as the parts.
#define GATHER_PARTS 160
#define GATHER_TILE (THREADS * 8)

struct GatherTable {
    const float* src[GATHER_PARTS];
    unsigned long long start[GATHER_PARTS + 1];
    unsigned long long len[GATHER_PARTS];
};

extern "C" __global__ void gather_parts(float* out, const GatherTable table, int count, float fill) {
    unsigned long long first = table.start[0] + (unsigned long long)blockIdx.x * GATHER_TILE;
    unsigned long long end = table.start[count];
    int lo = 0, hi = count - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (table.start[mid] <= first) lo = mid; else hi = mid - 1;
    }
    int p = lo;
    for (int k = 0; k < GATHER_TILE / THREADS; ++k) {
        unsigned long long i = first + (unsigned long long)k * THREADS + threadIdx.x;
        if (i >= end) break;
        while (i >= table.start[p + 1]) ++p;
        unsigned long long j = i - table.start[p];
        out[i] = j < table.len[p] ? __ldg(table.src[p] + j) : fill;
    }
}
