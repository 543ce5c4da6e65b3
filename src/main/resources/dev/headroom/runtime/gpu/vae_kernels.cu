// The diffusion-VAE kernels (see VaeKernels.java), compiled at run time by NVRTC like kernels.cu,
// in fp32 (_f32), fp16 (_f16) and bf16 (_bf16) storage with fp32 arithmetic. Tensors are NHWC
// views: element (p, c) of a view with `stride` channels per pixel and offset `off` is at
// p * stride + off + c. The load/store helpers are kernels.cu's (NVRTC compiles one source per
// module, without includes).

struct half_t { unsigned short bits; };
struct bf16_t { unsigned short bits; };

__device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ void store(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ float load(const half_t* p, long long i) {
    float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p[i].bits)); return f;
}
__device__ __forceinline__ void store(half_t* p, long long i, float v) {
    unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v)); p[i].bits = h;
}
__device__ __forceinline__ float load(const bf16_t* p, long long i) { return __uint_as_float(((unsigned)p[i].bits) << 16); }
__device__ __forceinline__ void store(bf16_t* p, long long i, float v) {
    unsigned u = __float_as_uint(v);
    p[i].bits = v != v ? (unsigned short)((u >> 16) | 0x40) : (unsigned short)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

#define THREADS 256

// Sum of a block's values into thread 0's return value (THREADS threads).
__device__ float block_sum(float v, float* shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
    __syncthreads();
    v = threadIdx.x < THREADS / 32 ? shared[threadIdx.x] : 0.f;
    if (threadIdx.x < 32) for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads();
    return v;
}

__device__ float block_max(float v, float* shared) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
    if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
    __syncthreads();
    v = threadIdx.x < THREADS / 32 ? shared[threadIdx.x] : -__int_as_float(0x7f800000);
    if (threadIdx.x < 32) for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
    __syncthreads();
    return v;
}

// GroupNorm statistics: block (row r = b*H + y, group g) writes the fp32 sum and sum of squares of
// that row's values in group g to partial[(r * G + g) * 2]; the host adds rows in double.
template <typename T>
__device__ void gn_stats(const T* x, int xs, int xo, int W, int C, int G, float* partial) {
    __shared__ float shared[32];
    long long r = blockIdx.x;
    int g = blockIdx.y, per = C / G;
    int count = W * per;
    float s = 0.f, q = 0.f;
    for (int e = threadIdx.x; e < count; e += THREADS) {
        int px = e / per, ch = g * per + e % per;
        float v = load(x, (r * W + px) * xs + xo + ch);
        s += v;
        q += v * v;
    }
    s = block_sum(s, shared);
    q = block_sum(q, shared);
    if (threadIdx.x == 0) {
        partial[(r * G + g) * 2] = s;
        partial[(r * G + g) * 2 + 1] = q;
    }
}

// y = (x - mean) * rstd * gamma + beta (then SiLU when silu != 0); meanRstd per (image, group).
// Grid: x over channels (32 per block), y a loop over pixels; hw = pixels per image.
template <typename T>
__device__ void gn_apply(const T* x, int xs, int xo, const float* meanRstd, const float* gamma, const float* beta, int silu,
                         T* y, int ys, int yo, long long pixels, long long hw, int C, int G) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int g = c / (C / G);
    for (long long p = (long long)blockIdx.y * blockDim.y + threadIdx.y; p < pixels; p += (long long)blockDim.y * gridDim.y) {
        long long b = p / hw;
        const float* mr = meanRstd + (b * G + g) * 2;
        float v = (load(x, p * xs + xo + c) - mr[0]) * mr[1] * gamma[c] + beta[c];
        if (silu) v = v / (1.f + expf(-v));
        store(y, p * ys + yo + c, v);
    }
}

// Direct convolution with stride and padding (top pt, left pl; the rest follows from the sizes):
// one thread per output channel and pixel; w is fp32 HWIO, bias fp32 or null.
template <typename T>
__device__ void strided_conv(const T* x, int xs, int xo, const float* w, const float* bias, T* y, int ys, int yo,
                             int N, int H, int W, int Cin, int OH, int OW, int Cout, int k, int stride, int pt, int pl) {
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= Cout) return;
    long long pixels = (long long)N * OH * OW;
    for (long long p = (long long)blockIdx.y * blockDim.y + threadIdx.y; p < pixels; p += (long long)blockDim.y * gridDim.y) {
        int ox = (int)(p % OW), oy = (int)(p / OW % OH);
        long long b = p / ((long long)OW * OH);
        float acc = bias ? bias[o] : 0.f;
        for (int ky = 0; ky < k; ky++) {
            int iy = oy * stride + ky - pt;
            if (iy < 0 || iy >= H) continue;
            for (int kx = 0; kx < k; kx++) {
                int ix = ox * stride + kx - pl;
                if (ix < 0 || ix >= W) continue;
                const long long src = ((b * H + iy) * W + ix) * xs + xo;
                const float* wk = w + (long long)((ky * k + kx) * Cin) * Cout + o;
                for (int i = 0; i < Cin; i++) acc += load(x, src + i) * wk[(long long)i * Cout];
            }
        }
        store(y, p * ys + yo + o, acc);
    }
}

// Row-wise softmax: block per row of `cols` fp32 scores s, written as probabilities p (storage type).
template <typename T>
__device__ void softmax_rows(const float* s, T* p, int cols) {
    __shared__ float shared[32];
    const float* row = s + (long long)blockIdx.x * cols;
    T* out = p + (long long)blockIdx.x * cols;
    float m = -__int_as_float(0x7f800000);
    for (int j = threadIdx.x; j < cols; j += THREADS) m = fmaxf(m, row[j]);
    m = block_max(m, shared);
    if (threadIdx.x == 0) shared[0] = m;
    __syncthreads();
    m = shared[0];
    __syncthreads();
    float sum = 0.f;
    for (int j = threadIdx.x; j < cols; j += THREADS) sum += expf(row[j] - m);
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0) shared[0] = sum;
    __syncthreads();
    float inv = 1.f / shared[0];
    for (int j = threadIdx.x; j < cols; j += THREADS) store(out, j, expf(row[j] - m) * inv);
}

#define ENTRY(T, S) \
extern "C" __global__ void gn_stats_##S(const T* x, int xs, int xo, int W, int C, int G, float* partial) \
        { gn_stats(x, xs, xo, W, C, G, partial); } \
extern "C" __global__ void gn_apply_##S(const T* x, int xs, int xo, const float* meanRstd, const float* gamma, const float* beta, int silu, \
        T* y, int ys, int yo, long long pixels, long long hw, int C, int G) \
        { gn_apply(x, xs, xo, meanRstd, gamma, beta, silu, y, ys, yo, pixels, hw, C, G); } \
extern "C" __global__ void strided_conv_##S(const T* x, int xs, int xo, const float* w, const float* bias, T* y, int ys, int yo, \
        int N, int H, int W, int Cin, int OH, int OW, int Cout, int k, int stride, int pt, int pl) \
        { strided_conv(x, xs, xo, w, bias, y, ys, yo, N, H, W, Cin, OH, OW, Cout, k, stride, pt, pl); } \
extern "C" __global__ void softmax_rows_##S(const float* s, T* p, int cols) { softmax_rows(s, p, cols); }

ENTRY(float, f32)
ENTRY(half_t, f16)
ENTRY(bf16_t, bf16)
