// What every headroom CUDA C source shares (KernelCache puts this file in place of a source's line
// that includes common.cuh; NVRTC compiles one source per module, without include paths): fp16 and
// bf16 storage types with fp32 loads and stores. fp16 values are converted with PTX cvt
// instructions and bf16 ones with integer arithmetic (bf16 is fp32's upper half), so no CUDA
// header is needed and any architecture compiles them.

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
// round to nearest even, as cvt.rn.bf16.f32 does; a NaN stays a NaN
__device__ __forceinline__ void store(bf16_t* p, long long i, float v) {
    unsigned u = __float_as_uint(v);
    p[i].bits = v != v ? (unsigned short)((u >> 16) | 0x40) : (unsigned short)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
