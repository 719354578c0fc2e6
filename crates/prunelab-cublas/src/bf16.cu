
// Both operands of a bf16 product, rounded from f32 to bf16 (to nearest, ties to even; NaN stays
// NaN) in one launch: elements [0, na) of `a` into `a16`, then [0, nb) of `b` into `b16`.
extern "C" __global__ void round_to_bf16(const float* a, unsigned short* a16, int na,
                                         const float* b, unsigned short* b16, int nb) {
    int total = na + nb;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        unsigned int u = __float_as_uint(i < na ? a[i] : b[i - na]);
        unsigned short h = (u & 0x7fffffffu) > 0x7f800000u
            ? (unsigned short)((u >> 16) | 0x40u)
            : (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        if (i < na) a16[i] = h; else b16[i - na] = h;
    }
}
