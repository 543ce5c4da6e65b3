// headroom's elementwise kernels, compiled at run time by NVRTC (see KernelCache), in fp32 (suffix
// _f32), fp16 (_f16) and bf16 (_bf16) storage; arithmetic is always fp32 (the storage types and their
// loads and stores are common.cuh's).
// Every tensor is NHWC and may be a channel slice of a wider buffer: element (p, c) of a view with
// `stride` channels per pixel and channel offset `off` lives at p * stride + off + c.
// Every kernel runs on a 2-D grid: x over channels, y a grid-stride loop over pixels, so no thread
// divides per element (a 64-bit division per element made them compute-bound: upsample took 6% of
// an RRDBNet 512 tile), and any grid size is correct.

#define PIXEL_LOOP(p, c, pixels, C) \
    const int c = blockIdx.x * blockDim.x + threadIdx.x; \
    if (c >= (C)) return; \
    for (long long p = (long long)blockIdx.y * blockDim.y + threadIdx.y; p < (pixels); p += (long long)blockDim.y * gridDim.y)

#include "common.cuh"

// act: 0 none, 1 relu, 2 leaky relu (leak), 3 prelu (slope per channel), 4 silu
__device__ __forceinline__ float activate(float v, int act, float leak, const float* slope, int c) {
    switch (act) {
        case 1: return v > 0.f ? v : 0.f;
        case 2: return v >= 0.f ? v : v * leak;
        case 3: return v >= 0.f ? v : v * slope[c];
        case 4: return v / (1.f + expf(-v));
        default: return v;
    }
}

// y = act(x + bias), or rscale * act(x + bias) + r when r is given: the convolution epilogue, also
// plain activation (bias null) and copy (act 0). x is (pixels, C) in a view (xs, xo); y and r likewise.
// x and y may be the same dense buffer. bias, slope: fp32.
template <typename T>
__device__ void epilogue(const T* x, int xs, int xo, const float* bias, const float* slope, int act, float leak,
                         const T* r, int rs, int ro, float rscale, T* y, int ys, int yo, long long pixels, int C) {
    PIXEL_LOOP(p, c, pixels, C) {
        float v = load(x, p * xs + xo + c);
        if (bias) v += bias[c];
        v = activate(v, act, leak, slope, c);
        if (r) v = __fadd_rn(__fmul_rn(rscale, v), load(r, p * rs + ro + c));
        store(y, p * ys + yo + c, v);
    }
}

// y = a + b
template <typename T>
__device__ void add2(const T* a, int as, int ao, const T* b, int bs, int bo, T* y, int ys, int yo, long long pixels, int C) {
    PIXEL_LOOP(p, c, pixels, C) {
        store(y, p * ys + yo + c, load(a, p * as + ao + c) + load(b, p * bs + bo + c));
    }
}

// y = f * x
template <typename T>
__device__ void scale(const T* x, int xs, int xo, float f, T* y, int ys, int yo, long long pixels, int C) {
    PIXEL_LOOP(p, c, pixels, C) {
        store(y, p * ys + yo + c, f * load(x, p * xs + xo + c));
    }
}

// (x, y, image) of pixel p of an (N, H, W) grid, with 32-bit divisions: the host keeps N*H*W below 2^31
__device__ __forceinline__ void pixel_at(unsigned p, unsigned W, unsigned H, unsigned& x, unsigned& y, unsigned& b) {
    x = p % W; p /= W;
    y = p % H;
    b = p / H;
}

// y (N, H*r, W*r, C) = nearest upsample of x (N, H, W, C); the host keeps N*H*r*W*r below 2^31,
// so a pixel's coordinates come from 32-bit divisions, once per pixel and channel thread.
template <typename T>
__device__ void upsample(const T* x, int xs, int xo, T* y, int ys, int yo, int N, int H, int W, int C, int r) {
    unsigned OW = (unsigned)W * r, OH = (unsigned)H * r;
    PIXEL_LOOP(p, c, (long long)N * OH * OW, C) {
        unsigned ox, oy, b;
        pixel_at((unsigned)p, OW, OH, ox, oy, b);
        long long src = ((long long)b * H + oy / r) * W + ox / r;
        store(y, p * ys + yo + c, load(x, src * xs + xo + c));
    }
}

// upsample for C a multiple of 8 in 16-byte aligned views (the host checks): thread i takes 8
// channels (lane i % CL, CL = C / 8) of input pixel i / CL, reads them once (16 bytes, 32 for fp32)
// and writes them to its r x r output pixels. The host keeps N*H*W*CL below 2^31 (32-bit divisions,
// once per 8 values and r*r pixels). upsample moves 2 bytes a thread and divides per value: on an H200
// it measured 2.2 ms of an SDXL 1024 decode, about 9x its memory traffic.
template <typename T> struct lane8 { uint4 u[sizeof(T) / 2]; };
template <typename T>
__device__ void upsample8(const T* x, int xs, int xo, T* y, int ys, int yo, int N, int H, int W, int C, int r) {
    const unsigned CL = (unsigned)C / 8, total = (unsigned)N * H * W * CL, OW = (unsigned)W * r, OH = (unsigned)H * r;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
        const unsigned lane = i % CL, q = i / CL, ix = q % W, t = q / W, iy = t % H, b = t / H;
        const lane8<T> v = *(const lane8<T>*)(x + (long long)q * xs + xo + lane * 8);
        for (int dy = 0; dy < r; dy++) {
            const long long row = ((long long)b * OH + iy * r + dy) * OW + (long long)ix * r;
            for (int dx = 0; dx < r; dx++) *(lane8<T>*)(y + (row + dx) * ys + yo + lane * 8) = v;
        }
    }
}

// y (N, H*r, W*r, C) from x (N, H, W, C*r*r). order 0: PyTorch (channel c*r*r + i*r + j); 1: TensorFlow ((i*r + j)*C + c).
// One thread per output pixel and channel; the host keeps N*H*r*W*r below 2^31 (32-bit divisions).
template <typename T>
__device__ void pixel_shuffle(const T* x, int xs, int xo, T* y, int ys, int yo, int N, int H, int W, int C, int r, int order) {
    unsigned OW = (unsigned)W * r, OH = (unsigned)H * r;
    PIXEL_LOOP(p, c, (long long)N * OH * OW, C) {
        unsigned ox, oy, b;
        pixel_at((unsigned)p, OW, OH, ox, oy, b);
        int si = (int)(oy % r), sj = (int)(ox % r);
        int sc = order == 0 ? c * r * r + si * r + sj : (si * r + sj) * C + c;
        long long src = ((long long)b * H + oy / r) * W + ox / r;
        store(y, p * ys + yo + c, load(x, src * xs + xo + sc));
    }
}

// y (N, H/r, W/r, C*r*r) from x (N, H, W, C): the inverse of pixel_shuffle; H, W, C are x's.
// One thread per input pixel and channel; the host keeps N*H*W below 2^31.
template <typename T>
__device__ void pixel_unshuffle(const T* x, int xs, int xo, T* y, int ys, int yo, int N, int H, int W, int C, int r, int order) {
    PIXEL_LOOP(p, c, (long long)N * H * W, C) {
        unsigned ix, iy, b;
        pixel_at((unsigned)p, (unsigned)W, (unsigned)H, ix, iy, b);
        int si = (int)(iy % r), sj = (int)(ix % r);
        int dc = order == 0 ? c * r * r + si * r + sj : (si * r + sj) * C + c;
        long long dst = ((long long)b * (H / r) + iy / r) * (W / r) + ix / r;
        store(y, dst * ys + yo + dc, load(x, p * xs + xo + c));
    }
}

// C entry points, one per storage type
#define ENTRY(T, S) \
extern "C" __global__ void epilogue_##S(const T* x, int xs, int xo, const float* bias, const float* slope, int act, float leak, \
        const T* r, int rs, int ro, float rscale, T* y, int ys, int yo, long long pixels, int C) \
        { epilogue(x, xs, xo, bias, slope, act, leak, r, rs, ro, rscale, y, ys, yo, pixels, C); } \
extern "C" __global__ void add2_##S(const T* a, int as, int ao, const T* b, int bs, int bo, T* y, int ys, int yo, long long pixels, int C) \
        { add2(a, as, ao, b, bs, bo, y, ys, yo, pixels, C); } \
extern "C" __global__ void scale_##S(const T* x, int xs, int xo, float f, T* y, int ys, int yo, long long pixels, int C) \
        { scale(x, xs, xo, f, y, ys, yo, pixels, C); } \
extern "C" __global__ void upsample_##S(const T* x, int xs, int xo, T* y, int ys, int yo, int N, int H, int W, int C, int r) \
        { upsample(x, xs, xo, y, ys, yo, N, H, W, C, r); } \
extern "C" __global__ void upsample8_##S(const T* x, int xs, int xo, T* y, int ys, int yo, int N, int H, int W, int C, int r) \
        { upsample8(x, xs, xo, y, ys, yo, N, H, W, C, r); } \
extern "C" __global__ void pixel_shuffle_##S(const T* x, int xs, int xo, T* y, int ys, int yo, int N, int H, int W, int C, int r, int order) \
        { pixel_shuffle(x, xs, xo, y, ys, yo, N, H, W, C, r, order); } \
extern "C" __global__ void pixel_unshuffle_##S(const T* x, int xs, int xo, T* y, int ys, int yo, int N, int H, int W, int C, int r, int order) \
        { pixel_unshuffle(x, xs, xo, y, ys, yo, N, H, W, C, r, order); }

// One precision per module when HEADROOM_STORAGE is defined (32, 16 or 17 for bf16): a session
// compiles only its own, a third of the work (CudaDevice). All three without it.
#if !defined(HEADROOM_STORAGE) || HEADROOM_STORAGE == 32
ENTRY(float, f32)
#endif
#if !defined(HEADROOM_STORAGE) || HEADROOM_STORAGE == 16
ENTRY(half_t, f16)
#endif
#if !defined(HEADROOM_STORAGE) || HEADROOM_STORAGE == 17
ENTRY(bf16_t, bf16)
#endif
