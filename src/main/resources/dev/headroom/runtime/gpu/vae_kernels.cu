// The diffusion-VAE kernels (see VaeKernels.java), compiled at run time by NVRTC like kernels.cu,
// in fp32 (_f32), fp16 (_f16) and bf16 (_bf16) storage with fp32 arithmetic. Tensors are NHWC
// views: element (p, c) of a view with `stride` channels per pixel and offset `off` is at
// p * stride + off + c.

#include "common.cuh"

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

// The last step of gn_stats and gn_stats8: thread g adds its group's channels of every pixel lane, lanes
// in order, from the lanes' sums in shared memory (ss, sq: PL x C), and writes row r's two sums.
__device__ __forceinline__ void gn_group_sums(const float* ss, const float* sq, int PL, int C, int G, long long r, float* partial) {
    if (threadIdx.x >= G) return;
    const int g = threadIdx.x, per = C / G;
    float a = 0.f, b = 0.f;
    for (int l = 0; l < PL; l++)
        for (int ch = g * per; ch < (g + 1) * per; ch++) {
            a += ss[l * C + ch];
            b += sq[l * C + ch];
        }
    partial[(r * G + g) * 2] = a;
    partial[(r * G + g) * 2 + 1] = b;
}

// GroupNorm statistics, first step: block r (row r = b*H + y of pixels) writes the fp32 sum and sum
// of squares of that row's values in each group g to partial[(r * G + g) * 2]. The order of the
// additions is fixed by W and C alone: thread t adds channels t % CL (+ CL, + 2 CL ...) of pixels
// t / CL, t / CL + PL, ... (CL = min(C, THREADS) channel lanes, PL = THREADS / CL pixel lanes, so a
// warp reads consecutive channels), then thread g adds its group's lanes in order. So a row's sums
// are the same whichever band it is computed in. C is at most GN_MAX_C.
#define GN_MAX_C 2048
template <typename T>
__device__ void gn_stats(const T* x, int xs, int xo, int W, int C, int G, float* partial) {
    __shared__ float ss[GN_MAX_C > THREADS ? GN_MAX_C : THREADS], sq[GN_MAX_C > THREADS ? GN_MAX_C : THREADS];
    const long long r = blockIdx.x;
    const int CL = C < THREADS ? C : THREADS, PL = THREADS / CL;
    const int cl = threadIdx.x % CL, pl = threadIdx.x / CL;
    float s[GN_MAX_C / THREADS], q[GN_MAX_C / THREADS];
    const int slots = (C + CL - 1) / CL;
#pragma unroll
    for (int k = 0; k < GN_MAX_C / THREADS; k++) { s[k] = 0.f; q[k] = 0.f; }
    if (pl < PL) {
        for (int px = pl; px < W; px += PL) {
            const long long at = (r * W + px) * xs + xo;
#pragma unroll
            for (int k = 0; k < GN_MAX_C / THREADS; k++) {
                int ch = cl + k * CL;
                if (k < slots && ch < C) {
                    float v = load(x, at + ch);
                    s[k] += v;
                    q[k] += v * v;
                }
            }
        }
#pragma unroll
        for (int k = 0; k < GN_MAX_C / THREADS; k++) {
            int ch = cl + k * CL;
            if (k < slots && ch < C) {
                ss[pl * C + ch] = s[k];
                sq[pl * C + ch] = q[k];
            }
        }
    }
    __syncthreads();
    gn_group_sums(ss, sq, PL, C, G, r, partial);
}

// GroupNorm statistics, second step: block b (one image) stages the H rows' partial sums in shared
// memory, a slice of rows at a time (coalesced loads), and thread g adds its group's rows in row order
// to the running double (count, sum, sum of squares) in acc[(b * G + g) * 3] (from zero when reset),
// then writes (mean, rstd) of what it holds to meanRstd[(b * G + g) * 2]. A band's rows added after
// the bands above it are the same additions in the same order as the whole image's, so a GroupNorm
// gathered band by band equals the untiled one bit for bit. (One thread per group reading each row
// from global memory in turn spent about 0.6 us a row waiting: 0.6 ms of each GroupNorm at 1024 rows.)
#define GN_ACC_FLOATS 8192
extern "C" __global__ void gn_accumulate(const float* partial, int N, int H, int G, double perRow, int reset, float eps,
                                         double* acc, float* meanRstd) {
    __shared__ float staged[GN_ACC_FLOATS];
    const int b = blockIdx.x, g = threadIdx.x, i = b * G + g;
    const int R = GN_ACC_FLOATS / (2 * G);   // rows per slice: G is at most 256
    double n = 0.0, s = 0.0, q = 0.0;
    if (g < G && !reset) {
        n = acc[i * 3];
        s = acc[i * 3 + 1];
        q = acc[i * 3 + 2];
    }
    for (int y0 = 0; y0 < H; y0 += R) {
        const int rows = H - y0 < R ? H - y0 : R;
        const float* src = partial + (long long)(b * H + y0) * G * 2;
        for (int j = threadIdx.x; j < rows * G * 2; j += blockDim.x) staged[j] = src[j];
        __syncthreads();
        if (g < G) {
            for (int y = 0; y < rows; y++) {
                n += perRow;
                s += (double)staged[(y * G + g) * 2];
                q += (double)staged[(y * G + g) * 2 + 1];
            }
        }
        __syncthreads();
    }
    if (g >= G) return;
    acc[i * 3] = n;
    acc[i * 3 + 1] = s;
    acc[i * 3 + 2] = q;
    // as GroupStats.meanRstd: the biased variance, as PyTorch's
    double mean = s / n, var = fmax(0.0, q / n - mean * mean);
    meanRstd[i * 2] = (float)mean;
    meanRstd[i * 2 + 1] = (float)(1.0 / sqrt(var + (double)eps));
}

// One normalised value, the same expression in gn_apply and gn_apply8 (so either gives the same bits).
__device__ __forceinline__ float gn_value(float x, const float* mr, float gamma, float beta, int silu) {
    float v = (x - mr[0]) * mr[1] * gamma + beta;
    return silu ? v / (1.f + expf(-v)) : v;
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
        long long b = pixels == hw ? 0 : p / hw;   // one image (a decode): no 64-bit division per element
        const float* mr = meanRstd + (b * G + g) * 2;
        store(y, p * ys + yo + c, gn_value(load(x, p * xs + xo + c), mr, gamma[c], beta[c], silu));
    }
}

// Eight consecutive values of a view at element i (a multiple of 8): one 16-byte access for 16-bit
// types, two for fp32, when `vec` (the caller checked 16-byte alignment); else one at a time.
__device__ __forceinline__ void load8(const float* p, long long i, bool vec, float* v) {
    if (vec) {
        float4 a = *(const float4*)(p + i), b = *(const float4*)(p + i + 4);
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    } else {
        for (int j = 0; j < 8; j++) v[j] = p[i + j];
    }
}
template <typename T>
__device__ __forceinline__ void load8(const T* p, long long i, bool vec, float* v) {
    if (vec) {
        union { uint4 u; T h[8]; } w;
        w.u = *(const uint4*)(p + i);
        for (int j = 0; j < 8; j++) v[j] = load(w.h, j);
    } else {
        for (int j = 0; j < 8; j++) v[j] = load(p, i + j);
    }
}
__device__ __forceinline__ void store8(float* p, long long i, bool vec, const float* v) {
    if (vec) {
        *(float4*)(p + i) = make_float4(v[0], v[1], v[2], v[3]);
        *(float4*)(p + i + 4) = make_float4(v[4], v[5], v[6], v[7]);
    } else {
        for (int j = 0; j < 8; j++) p[i + j] = v[j];
    }
}
template <typename T>
__device__ __forceinline__ void store8(T* p, long long i, bool vec, const float* v) {
    if (vec) {
        union { uint4 u; T h[8]; } w;
        for (int j = 0; j < 8; j++) store(w.h, j, v[j]);
        *(uint4*)(p + i) = w.u;
    } else {
        for (int j = 0; j < 8; j++) store(p, i + j, v[j]);
    }
}

// gn_stats for C a multiple of 8: thread t adds channels 8 * (t % CL) .. + 7 of pixels t / CL,
// t / CL + PL, ... (CL = C / 8 lanes of 8 channels, PL = THREADS / CL pixel lanes), then thread g
// adds its group's lanes in order, as gn_stats does. The order is fixed by W and C alone (whether the
// loads are 16-byte or not), so a row's sums are the same in whichever band it is computed.
template <typename T>
__device__ void gn_stats8(const T* x, int xs, int xo, int W, int C, int G, int vec, float* partial) {
    __shared__ float ss[GN_MAX_C], sq[GN_MAX_C];
    const long long r = blockIdx.x;
    const int CL = C / 8, PL = THREADS / CL;
    const int cl = threadIdx.x % CL, pl = threadIdx.x / CL;
    if (pl < PL) {
        float s[8], q[8], v[8];
#pragma unroll
        for (int j = 0; j < 8; j++) { s[j] = 0.f; q[j] = 0.f; }
#pragma unroll 4
        for (int px = pl; px < W; px += PL) {
            load8(x, (r * W + px) * xs + xo + cl * 8, vec != 0, v);
#pragma unroll
            for (int j = 0; j < 8; j++) { s[j] += v[j]; q[j] += v[j] * v[j]; }
        }
#pragma unroll
        for (int j = 0; j < 8; j++) {
            ss[pl * C + cl * 8 + j] = s[j];
            sq[pl * C + cl * 8 + j] = q[j];
        }
    }
    __syncthreads();
    gn_group_sums(ss, sq, PL, C, G, r, partial);
}

// gn_stats8b (in ENTRY below) is gn_stats8 held to 32 registers a thread, so 8 blocks of 256 threads fit on a
// multiprocessor and a 1024-row image (1,024 blocks) runs in one wave on an H200's 132 (at 40 registers 6 fit:
// two waves, the second three quarters empty). The same additions in the same order as gn_stats8. In 16-bit
// storage it spills 24 bytes a thread (fp32: 272, so fp32 keeps gn_stats8).

// gn_apply for C a multiple of 8: each thread normalises 8 consecutive channels of one pixel, with
// 16-byte loads and stores when `vec`. May run in place (y = x): each value is read, then written,
// by the same thread. A 1-D grid loops over (pixel, lane of 8 channels).
template <typename T>
__device__ void gn_apply8(const T* x, int xs, int xo, const float* meanRstd, const float* gamma, const float* beta, int silu,
                          T* y, int ys, int yo, long long pixels, long long hw, int C, int G, int vec) {
    const int CL = C / 8, per = C / G;
    const long long total = pixels * CL;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)blockDim.x * gridDim.x) {
        const long long p = i / CL;
        const int c0 = (int)(i - p * CL) * 8;
        const long long b = pixels == hw ? 0 : p / hw;
        float v[8];
        load8(x, p * xs + xo + c0, vec != 0, v);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int c = c0 + j;
            v[j] = gn_value(v[j], meanRstd + (b * G + c / per) * 2, gamma[c], beta[c], silu);
        }
        store8(y, p * ys + yo + c0, vec != 0, v);
    }
}

// GroupNorm's normalisation as the CPU does it: thread (pixel lane pl, channel lane cl) of image
// blockIdx.y takes channels 8 * cl .. + 7, works out their scale a = rstd * gamma and shift
// d = beta - mean * a once, then writes y = x * a + d (then SiLU with the hardware exp and
// reciprocal, about 2 ulp of fp32, far below fp16's rounding) for pixels pl, pl + PL * gridDim.x, ...
// of that image (CL = C / 8 channel lanes, PL = THREADS / CL pixel lanes). No division and no
// precise exp per value: gn_apply8 spends about 90 instructions a value on those, and measured 0.61 ms
// for 128 channels at 1024x1024 on an H200, about 3x its memory traffic. May run in place, as
// gn_apply8. Bands and the whole image take the same kernel, so they still agree bit for bit.
__device__ __forceinline__ float gn_affine(float v, float a, float d, int silu) {
    float u = fmaf(v, a, d);
    return silu ? u * __frcp_rn(1.f + __expf(-u)) : u;
}
// two != 0: two pixels a thread at a time (gn_affine8x2, the default; HEADROOM_VAE_GN=affine for one at a time).
template <typename T>
__device__ void gn_affine8(const T* x, int xs, int xo, const float* meanRstd, const float* gamma, const float* beta, int silu,
                           T* y, int ys, int yo, long long hw, int C, int G, int vec, bool two) {
    const int CL = C / 8, PL = THREADS / CL, per = C / G;
    const int cl = threadIdx.x % CL, pl = threadIdx.x / CL;
    if (pl >= PL) return;
    const int b = blockIdx.y, c0 = cl * 8;
    float a[8], d[8];
    int g = c0 / per, left = per - (c0 - g * per);   // channel c0 + j's group, by counting
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const int c = c0 + j;
        const float* mr = meanRstd + ((long long)b * G + g) * 2;
        a[j] = mr[1] * gamma[c];
        d[j] = beta[c] - mr[0] * a[j];
        if (--left == 0) {
            g++;
            left = per;
        }
    }
    const long long step = (long long)PL * gridDim.x;
    long long p = (long long)blockIdx.x * PL + pl;
    if (two) {
        // two pixels' loads in flight before either is used: at 48 registers a thread (5 blocks a multiprocessor)
        // one 16-byte load each keeps about 2.7 MB in flight, by my estimate short of the ~3.4 MB the H200's
        // bandwidth needs at its latency; here 64 registers, 4 blocks, 4.3 MB. Each value is still read, then
        // written, by the same thread. Measured with gn_stats8b on an H200 (v18's second call): SDXL 1024 forward
        // 22.9 ms against 23.7 with gn_affine8 and gn_stats8, the image the same bit for bit.
        for (; p + step < hw; p += 2 * step) {
            const long long p0 = ((long long)b * hw + p), p1 = p0 + step;
            float v[8], w[8];
            load8(x, p0 * xs + xo + c0, vec != 0, v);
            load8(x, p1 * xs + xo + c0, vec != 0, w);
#pragma unroll
            for (int j = 0; j < 8; j++) {
                v[j] = gn_affine(v[j], a[j], d[j], silu);
                w[j] = gn_affine(w[j], a[j], d[j], silu);
            }
            store8(y, p0 * ys + yo + c0, vec != 0, v);
            store8(y, p1 * ys + yo + c0, vec != 0, w);
        }
    }
    for (; p < hw; p += step) {
        const long long px = (long long)b * hw + p;
        float v[8];
        load8(x, px * xs + xo + c0, vec != 0, v);
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = gn_affine(v[j], a[j], d[j], silu);
        store8(y, px * ys + yo + c0, vec != 0, v);
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

// Attention's row softmax, split as flash attention splits it: block per row of `cols` fp32 scores s
// writes p = exp(s - max) in the storage type (in (0, 1], the largest exactly 1) and inv[row] =
// 1 / (fp32 sum of the exps). Normalised probabilities at 16,384 and more positions would lie near or
// below fp16's smallest normal number and lose most of their bits; these stay normal where they matter.
template <typename T>
__device__ void softmax_rows(const float* s, T* p, float* inv, int cols) {
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
    for (int j = threadIdx.x; j < cols; j += THREADS) {
        float e = expf(row[j] - m);
        sum += e;
        store(out, j, e);
    }
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0) inv[blockIdx.x] = 1.f / sum;
}

// softmax_rows for cols a multiple of 4 (the host checks; the default in the arena, HEADROOM_VAE_SOFTMAX=scalar for softmax_rows): the same values, read 16 bytes a thread
// (4 scores) and written 4 exps at a time, so each thread has 4x the bytes in flight. The sum's
// additions are in another order than softmax_rows's (fp32, over up to 262,144 exps).
__device__ __forceinline__ void store4(float* p, long long i, float a, float b, float c, float d) {
    *(float4*)(p + i) = make_float4(a, b, c, d);
}
template <typename T>
__device__ __forceinline__ void store4(T* p, long long i, float a, float b, float c, float d) {
    union { uint2 u; T h[4]; } w;
    store(w.h, 0, a);
    store(w.h, 1, b);
    store(w.h, 2, c);
    store(w.h, 3, d);
    *(uint2*)(p + i) = w.u;
}
template <typename T>
__device__ void softmax_rows4(const float* s, T* p, float* inv, int cols) {
    __shared__ float shared[32];
    const float4* row = (const float4*)(s + (long long)blockIdx.x * cols);
    T* out = p + (long long)blockIdx.x * cols;
    const int quads = cols / 4;
    float m = -__int_as_float(0x7f800000);
    for (int j = threadIdx.x; j < quads; j += THREADS) {
        float4 v = row[j];
        m = fmaxf(m, fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w)));
    }
    m = block_max(m, shared);
    if (threadIdx.x == 0) shared[0] = m;
    __syncthreads();
    m = shared[0];
    __syncthreads();
    float sum = 0.f;
    for (int j = threadIdx.x; j < quads; j += THREADS) {
        float4 v = row[j];
        float a = expf(v.x - m), b = expf(v.y - m), c = expf(v.z - m), d = expf(v.w - m);
        sum += (a + b) + (c + d);
        store4(out, (long long)j * 4, a, b, c, d);
    }
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0) inv[blockIdx.x] = 1.f / sum;
}

// y[r, c] = acc[r * C + c] * inv[r] in the storage type: the exps' weighted sums of values (fp32,
// from the GEMM) divided by their rows' sums. Grid: x over channels, y a loop over rows.
template <typename T>
__device__ void scale_rows(const float* acc, const float* inv, T* y, int ys, int rows, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int r = blockIdx.y * blockDim.y + threadIdx.y; r < rows; r += blockDim.y * gridDim.y)
        store(y, (long long)r * ys + c, acc[(long long)r * C + c] * inv[r]);
}

#define ENTRY(T, S) \
extern "C" __global__ void gn_stats_##S(const T* x, int xs, int xo, int W, int C, int G, float* partial) \
        { gn_stats(x, xs, xo, W, C, G, partial); } \
extern "C" __global__ void gn_apply_##S(const T* x, int xs, int xo, const float* meanRstd, const float* gamma, const float* beta, int silu, \
        T* y, int ys, int yo, long long pixels, long long hw, int C, int G) \
        { gn_apply(x, xs, xo, meanRstd, gamma, beta, silu, y, ys, yo, pixels, hw, C, G); } \
extern "C" __global__ void gn_stats8_##S(const T* x, int xs, int xo, int W, int C, int G, int vec, float* partial) \
        { gn_stats8(x, xs, xo, W, C, G, vec, partial); } \
extern "C" __global__ void gn_apply8_##S(const T* x, int xs, int xo, const float* meanRstd, const float* gamma, const float* beta, int silu, \
        T* y, int ys, int yo, long long pixels, long long hw, int C, int G, int vec) \
        { gn_apply8(x, xs, xo, meanRstd, gamma, beta, silu, y, ys, yo, pixels, hw, C, G, vec); } \
extern "C" __global__ void gn_affine8_##S(const T* x, int xs, int xo, const float* meanRstd, const float* gamma, const float* beta, int silu, \
        T* y, int ys, int yo, long long hw, int C, int G, int vec) \
        { gn_affine8(x, xs, xo, meanRstd, gamma, beta, silu, y, ys, yo, hw, C, G, vec, false); } \
extern "C" __global__ void __launch_bounds__(THREADS, 4) gn_affine8x2_##S(const T* x, int xs, int xo, const float* meanRstd, const float* gamma, const float* beta, int silu, \
        T* y, int ys, int yo, long long hw, int C, int G, int vec) \
        { gn_affine8(x, xs, xo, meanRstd, gamma, beta, silu, y, ys, yo, hw, C, G, vec, true); } \
extern "C" __global__ void __launch_bounds__(THREADS, 8) gn_stats8b_##S(const T* x, int xs, int xo, int W, int C, int G, int vec, float* partial) \
        { gn_stats8(x, xs, xo, W, C, G, vec, partial); } \
extern "C" __global__ void strided_conv_##S(const T* x, int xs, int xo, const float* w, const float* bias, T* y, int ys, int yo, \
        int N, int H, int W, int Cin, int OH, int OW, int Cout, int k, int stride, int pt, int pl) \
        { strided_conv(x, xs, xo, w, bias, y, ys, yo, N, H, W, Cin, OH, OW, Cout, k, stride, pt, pl); } \
extern "C" __global__ void softmax_rows_##S(const float* s, T* p, float* inv, int cols) { softmax_rows(s, p, inv, cols); } \
extern "C" __global__ void softmax_rows4_##S(const float* s, T* p, float* inv, int cols) { softmax_rows4(s, p, inv, cols); } \
extern "C" __global__ void scale_rows_##S(const float* acc, const float* inv, T* y, int ys, int rows, int C) \
        { scale_rows(acc, inv, y, ys, rows, C); }

ENTRY(float, f32)
ENTRY(half_t, f16)
ENTRY(bf16_t, bf16)
