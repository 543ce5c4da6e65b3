// headroom's weight expansion, compiled at run time by NVRTC (see KernelCache): a convolution's
// kernel held compact on the device (int8 or fp8 e4m3 with a scale per output channel, or NF4 in
// blocks with an absmax each, as bitsandbytes stores it) is expanded into the compute precision
// (_f32, _f16, _bf16) in KRSC (cout, kh, kw, cin) order, the layout cuDNN reads, just before the
// convolution runs. Each value is computed exactly as the host's Compact.expand does it (one fp32
// product, no fused multiply-add) and rounded to nearest even, so a GPU expansion equals the host
// expansion bit for bit.

struct half_t { unsigned short bits; };
struct bf16_t { unsigned short bits; };

__device__ __forceinline__ void store(float* p, unsigned i, float v) { p[i] = v; }
__device__ __forceinline__ void store(half_t* p, unsigned i, float v) {
    unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v)); p[i].bits = h;
}
// round to nearest even, as Precision.toBits does; a NaN stays a NaN
__device__ __forceinline__ void store(bf16_t* p, unsigned i, float v) {
    unsigned u = __float_as_uint(v);
    p[i].bits = v != v ? (unsigned short)((u >> 16) | 0x40) : (unsigned short)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// scheme: 0 int8 (value = code * scale[s % channels]), 1 fp8 (table[code] * scale[s % channels],
// table = the 256 decoded e4m3 values), 2 NF4 (table[nibble] * absmax[s / blocksize], the first
// value of a byte in its high nibble). s is the value's index in storage order: order 0 when the
// codes are stored (kh, kw, cin, cout), 1 when stored as PyTorch keeps them (cout, cin, kh, kw).
// One thread per output value, grid-stride; a layer has fewer than 2^31 values.
template <typename T>
__device__ void expand(const unsigned char* codes, const float* scales, const float* table, int scheme, int order,
                       int channels, int blocksize, int kh, int kw, int ci, int co, T* out) {
    unsigned n = (unsigned)kh * kw * ci * co;
    for (unsigned q = blockIdx.x * blockDim.x + threadIdx.x; q < n; q += blockDim.x * gridDim.x) {
        unsigned i = q % ci, t = q / ci, x = t % kw;
        t /= kw;
        unsigned y = t % kh, o = t / kh;
        unsigned s = order == 0 ? ((y * kw + x) * ci + i) * co + o : ((o * ci + i) * kh + y) * kw + x;
        float v;
        if (scheme == 0) {
            v = __fmul_rn((float)(signed char)codes[s], scales[s % channels]);
        } else if (scheme == 1) {
            v = __fmul_rn(table[codes[s]], scales[s % channels]);
        } else {
            unsigned b = codes[s >> 1];
            v = __fmul_rn(table[(s & 1u) ? (b & 15u) : (b >> 4)], scales[s / blocksize]);
        }
        store(out, q, v);
    }
}

#define ENTRY(T, S) \
extern "C" __global__ void expand_##S(const unsigned char* codes, const float* scales, const float* table, int scheme, int order, \
        int channels, int blocksize, int kh, int kw, int ci, int co, T* out) \
        { expand(codes, scales, table, scheme, order, channels, blocksize, kh, kw, ci, co, out); }

ENTRY(float, f32)
ENTRY(half_t, f16)
ENTRY(bf16_t, bf16)
