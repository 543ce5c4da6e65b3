// headroom's fp32 elementwise kernels, compiled at run time by NVRTC (see KernelCache).
// Every tensor is NHWC and may be a channel slice of a wider buffer: element (p, c) of a view with
// `stride` channels per pixel and channel offset `off` lives at p * stride + off + c.
// All kernels use a grid-stride loop over the output's elements, so any grid size is correct.

#define LOOP(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)blockDim.x * gridDim.x)

// act: 0 none, 1 relu, 2 leaky relu (leak), 3 prelu (slope per channel)
__device__ __forceinline__ float activate(float v, int act, float leak, const float* slope, int c) {
    switch (act) {
        case 1: return v > 0.f ? v : 0.f;
        case 2: return v >= 0.f ? v : v * leak;
        case 3: return v >= 0.f ? v : v * slope[c];
        default: return v;
    }
}

// y = act(x + bias): the convolution epilogue, also plain activation (bias null) and copy (act 0).
// x is (pixels, C) in a view (xs, xo); y likewise (ys, yo). x and y may be the same dense buffer.
extern "C" __global__ void epilogue(const float* x, int xs, int xo, const float* bias, const float* slope, int act, float leak,
                                    float* y, int ys, int yo, long long pixels, int C) {
    LOOP(i, pixels * C) {
        long long p = i / C;
        int c = (int)(i - p * C);
        float v = x[p * xs + xo + c];
        if (bias) v += bias[c];
        y[p * ys + yo + c] = activate(v, act, leak, slope, c);
    }
}

// y = a + b
extern "C" __global__ void add2(const float* a, int as, int ao, const float* b, int bs, int bo, float* y, int ys, int yo,
                                long long pixels, int C) {
    LOOP(i, pixels * C) {
        long long p = i / C;
        int c = (int)(i - p * C);
        y[p * ys + yo + c] = a[p * as + ao + c] + b[p * bs + bo + c];
    }
}

// y = f * x
extern "C" __global__ void scale(const float* x, int xs, int xo, float f, float* y, int ys, int yo, long long pixels, int C) {
    LOOP(i, pixels * C) {
        long long p = i / C;
        int c = (int)(i - p * C);
        y[p * ys + yo + c] = f * x[p * xs + xo + c];
    }
}

// y (N, H*r, W*r, C) = nearest upsample of x (N, H, W, C)
extern "C" __global__ void upsample(const float* x, int xs, int xo, float* y, int ys, int yo, int N, int H, int W, int C, int r) {
    long long OW = (long long)W * r, OH = (long long)H * r;
    LOOP(i, (long long)N * OH * OW * C) {
        int c = (int)(i % C);
        long long q = i / C;
        long long ox = q % OW; q /= OW;
        long long oy = q % OH;
        long long b = q / OH;
        long long src = (b * H + oy / r) * W + ox / r;
        long long dst = (b * OH + oy) * OW + ox;
        y[dst * ys + yo + c] = x[src * xs + xo + c];
    }
}

// y (N, H*r, W*r, C) from x (N, H, W, C*r*r). order 0: PyTorch (channel c*r*r + i*r + j); 1: TensorFlow ((i*r + j)*C + c)
extern "C" __global__ void pixel_shuffle(const float* x, int xs, int xo, float* y, int ys, int yo, int N, int H, int W, int C, int r, int order) {
    long long OW = (long long)W * r, OH = (long long)H * r;
    LOOP(i, (long long)N * OH * OW * C) {
        int c = (int)(i % C);
        long long q = i / C;
        long long ox = q % OW; q /= OW;
        long long oy = q % OH;
        long long b = q / OH;
        int si = (int)(oy % r), sj = (int)(ox % r);
        int sc = order == 0 ? c * r * r + si * r + sj : (si * r + sj) * C + c;
        long long src = (b * H + oy / r) * W + ox / r;
        long long dst = (b * OH + oy) * OW + ox;
        y[dst * ys + yo + c] = x[src * xs + xo + sc];
    }
}

// y (N, H/r, W/r, C*r*r) from x (N, H, W, C): the inverse of pixel_shuffle; H, W, C are x's
extern "C" __global__ void pixel_unshuffle(const float* x, int xs, int xo, float* y, int ys, int yo, int N, int H, int W, int C, int r, int order) {
    LOOP(i, (long long)N * H * W * C) {
        int c = (int)(i % C);
        long long q = i / C;
        long long ix = q % W; q /= W;
        long long iy = q % H;
        long long b = q / H;
        int si = (int)(iy % r), sj = (int)(ix % r);
        int dc = order == 0 ? c * r * r + si * r + sj : (si * r + sj) * C + c;
        long long dst = (b * (H / r) + iy / r) * (W / r) + ix / r;
        y[dst * ys + yo + dc] = x[((b * H + iy) * W + ix) * xs + xo + c];
    }
}
