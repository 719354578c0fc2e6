
// The device addresses of every matrix of a batched product's three operands, for
// cublasGemmBatchedEx: matrix i of `x` starts (i / inner) * x_outer + (i % inner) * x_inner elements
// after `x` (layout.rs's Batch). `out` receives a's addresses, then b's, then c's, `count` each.
extern "C" __global__ void gemm_pointers(const float* a, const float* b, const float* c, int count, int inner,
                                         int a_outer, int a_inner, int b_outer, int b_inner,
                                         int c_outer, int c_inner, unsigned long long* out) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    long long outer = i / inner, within = i % inner;
    out[i] = (unsigned long long)(a + outer * a_outer + within * a_inner);
    out[count + i] = (unsigned long long)(b + outer * b_outer + within * b_inner);
    out[2 * (long long)count + i] = (unsigned long long)(c + outer * c_outer + within * c_inner);
}
