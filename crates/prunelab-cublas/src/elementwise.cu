// GELU (exact, and transformers' tanh approximation) and dropout over n elements, forward and
// backward, one launch each where Burn composes GELU from five ops forward and sixteen backward
// (its backward of the exact GELU is the tanh approximation's derivative) and dropout from a
// Bernoulli draw and two products.

// SplitMix64's finaliser of seed + index * phi: prunelab_models::layers::fused::mask_hash.
__device__ unsigned long long mask_hash(unsigned long long seed, unsigned long long index) {
    unsigned long long z = seed + index * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Whether dropout under seed keeps element index at threshold: fused::dropout_keeps, the rule the
// dropout kernel below draws by pairwise (and softmax.cu's attention dropout element by element).
__device__ bool dropout_keeps(unsigned long long seed, unsigned long long index, unsigned int threshold) {
    return ((unsigned int)(mask_hash(seed, index >> 1) >> (32 * (index & 1))) >> 8) < threshold;
}

// y = x * scale where the layers' rule keeps the element (fused::dropout_keeps: the 24 high bits
// of its 32-bit half of mask_hash(seed, i / 2), the low half for even i, below threshold), else
// 0. The backward pass is the same kernel on the output's gradient under the same seed. One
// thread a pair of elements, one hash each.
extern "C" __global__ void dropout(const float* x, int n, unsigned long long seed, unsigned int threshold,
                                   float scale, float* y) {
    long long pair = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long first = 2 * pair;
    if (first >= n) return;
    unsigned long long h = mask_hash(seed, (unsigned long long)pair);
    unsigned int low = (unsigned int)h >> 8, high = (unsigned int)(h >> 32) >> 8;
    y[first] = low < threshold ? x[first] * scale : 0.0f;
    if (first + 1 < n) y[first + 1] = high < threshold ? x[first + 1] * scale : 0.0f;
}

#define GELU_SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_COEFF 0.044715f

// gelu(x): x * (1 + erf(x / sqrt 2)) / 2 as Burn writes it, or with approximate != 0
// x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) / 2.
extern "C" __global__ void gelu_forward(const float* x, int n, int approximate, float* y) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i];
    if (approximate) {
        float inner = (v + GELU_COEFF * v * v * v) * GELU_SQRT_2_OVER_PI;
        y[i] = v * (tanhf(inner) + 1.0f) * 0.5f;
    } else {
        y[i] = v * (erff(v * 0.7071067811865476f) + 1.0f) * 0.5f;
    }
}

// dx = g * gelu'(x): the exact derivative of each form.
extern "C" __global__ void gelu_backward(const float* g, const float* x, int n, int approximate, float* dx) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i], d;
    if (approximate) {
        float t = tanhf((v + GELU_COEFF * v * v * v) * GELU_SQRT_2_OVER_PI);
        d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * GELU_SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_COEFF * v * v);
    } else {
        // Phi(x) + x * phi(x).
        d = 0.5f * (1.0f + erff(v * 0.7071067811865476f)) + v * expf(-0.5f * v * v) * 0.3989422804014327f;
    }
    dx[i] = g[i] * d;
}
