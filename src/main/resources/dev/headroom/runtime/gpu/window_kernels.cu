// The output window of a tiled upscale on the device (see CudaWindow): tiles' outputs are added into
// an fp32 accumulator with their blend weights, and final rows leave the device as 8 or 16 bit
// samples. Compiled at run time by NVRTC (KernelCache), on first use, as a module of its own.
//
// The accumulator is a ring of `capacity` rows of `width` pixels of C fp32 channels: output row y
// lives in slot y % capacity. The arithmetic is the host's (OutputRows.OnHost, PngWriter)
// operation for operation, with no fused multiply-add, so both give the same bits:
//   acc += (wy * wx) * (y * inv);   sample = round(clamp(acc, 0, 1) * max)
// Each kernel is a flat grid-stride loop over elements with 32-bit divisions (the host keeps every
// count below 2^31).

#include "common.cuh"

// acc[row + py][col + px][c] += (wy[py] * wx[px]) * (y[image][py][px][c] * inv) for py < rows, px < cols, c < C.
// y is (N, H, W, C) in a view with `ys` channels per pixel from channel `yo` (H, W: the padded tile's output).
template <typename T>
__device__ void blend(const T* y, int ys, int yo, int image, int H, int W, int rows, int cols, const float* wy, const float* wx,
                      float inv, float* acc, int width, int capacity, int row, int col, int C) {
    unsigned total = (unsigned)rows * cols * C;
    for (unsigned e = blockIdx.x * blockDim.x + threadIdx.x; e < total; e += blockDim.x * gridDim.x) {
        unsigned c = e % C, p = e / C;
        unsigned px = p % cols, py = p / cols;
        float v = __fmul_rn(load(y, (((long long)image * H + py) * W + px) * ys + yo + c), inv);
        float w = __fmul_rn(wy[py], wx[px]);
        long long slot = (row + py) % capacity;
        float* a = acc + (slot * width + col + px) * C + c;
        *a = __fadd_rn(*a, __fmul_rn(w, v));
    }
}

extern "C" __global__ void blend_f32(const float* y, int ys, int yo, int image, int H, int W, int rows, int cols, const float* wy,
        const float* wx, float inv, float* acc, int width, int capacity, int row, int col, int C)
        { blend(y, ys, yo, image, H, W, rows, cols, wy, wx, inv, acc, width, capacity, row, col, C); }
extern "C" __global__ void blend_f16(const half_t* y, int ys, int yo, int image, int H, int W, int rows, int cols, const float* wy,
        const float* wx, float inv, float* acc, int width, int capacity, int row, int col, int C)
        { blend(y, ys, yo, image, H, W, rows, cols, wy, wx, inv, acc, width, capacity, row, col, C); }
extern "C" __global__ void blend_bf16(const bf16_t* y, int ys, int yo, int image, int H, int W, int rows, int cols, const float* wy,
        const float* wx, float inv, float* acc, int width, int capacity, int row, int col, int C)
        { blend(y, ys, yo, image, H, W, rows, cols, wy, wx, inv, acc, width, capacity, row, col, C); }

// Output rows [from, from + rows) to samples in `out` (one byte each, or two big-endian when bytes
// is 2), row after row, and their slots back to zero for the rows that come next. With `gray` (C is
// 3), one sample a pixel: the channels' mean ((c0 + c1) + c2) / 3, as ImageUpscaler's host path.
extern "C" __global__ void to_samples(float* acc, int width, int capacity, int from, int rows, int C, int bytes, int gray, unsigned char* out) {
    unsigned K = gray ? 1 : C;   // samples a pixel
    unsigned perRow = (unsigned)width * K, total = (unsigned)rows * perRow;
    float max = bytes == 1 ? 255.f : 65535.f;
    for (unsigned e = blockIdx.x * blockDim.x + threadIdx.x; e < total; e += blockDim.x * gridDim.x) {
        unsigned r = e / perRow, i = e % perRow;
        long long at = ((long long)(from + r) % capacity) * ((long long)width * C) + (long long)i * C / K;
        float m = acc[at];
        acc[at] = 0.f;
        if (gray) {
            m = __fdiv_rn(__fadd_rn(__fadd_rn(m, acc[at + 1]), acc[at + 2]), 3.f);
            acc[at + 1] = 0.f;
            acc[at + 2] = 0.f;
        }
        float v = fminf(fmaxf(m, 0.f), 1.f);   // NaN becomes 0, as Math.clamp's NaN rounds to 0
        // Java's Math.round(float): floor(x + 1/2) taken exactly, in double
        unsigned q = (unsigned)floor((double)__fmul_rn(v, max) + 0.5);
        if (bytes == 1) {
            out[e] = (unsigned char)q;
        } else {
            out[2 * (long long)e] = (unsigned char)(q >> 8);
            out[2 * (long long)e + 1] = (unsigned char)q;
        }
    }
}

// n floats of acc to zero.
extern "C" __global__ void zero(float* acc, long long n) {
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)blockDim.x * gridDim.x) acc[e] = 0.f;
}
