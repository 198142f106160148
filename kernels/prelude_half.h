// gpuad half-precision storage types, for kernels whose operands are float16 or bfloat16: gpuad_f16 and
// gpuad_bf16 (two bytes each, the bits of IEEE binary16 and of bfloat16) are only loaded (converted to float,
// the kernel's compute type T) and stored (rounded to nearest even from float). No header is needed, so NVRTC
// compiles them without CUDA's include folder: on the GPU the float16 conversions are PTX cvt instructions; on
// the CPU, GCC/Clang's _Float16. bfloat16 rounds in integer arithmetic on both (as __float2bfloat16 does).
#ifndef GPUAD_PRELUDE_HALF_H
#define GPUAD_PRELUDE_HALF_H
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GPUAD_HALF_FN __device__ __forceinline__
GPUAD_HALF_FN unsigned int gpuad_float_bits(float f) { return __float_as_uint(f); }
GPUAD_HALF_FN float gpuad_bits_float(unsigned int u) { return __uint_as_float(u); }
struct gpuad_f16 {
    unsigned short bits;
    gpuad_f16() = default;
    GPUAD_HALF_FN gpuad_f16(float f) { asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(f)); }
    GPUAD_HALF_FN operator float() const { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(bits)); return f; }
};
#else
#include <cstring>
#define GPUAD_HALF_FN inline
inline unsigned int gpuad_float_bits(float f) { unsigned int u; std::memcpy(&u, &f, 4); return u; }
inline float gpuad_bits_float(unsigned int u) { float f; std::memcpy(&f, &u, 4); return f; }
typedef _Float16 gpuad_f16;
#endif
struct gpuad_bf16 {
    unsigned short bits;
    gpuad_bf16() = default;
    GPUAD_HALF_FN gpuad_bf16(float f) {
        unsigned int u = gpuad_float_bits(f);
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            bits = (unsigned short)((u >> 16) | 0x40u);  // a quiet NaN
        } else {
            u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
            bits = (unsigned short)(u >> 16);
        }
    }
    GPUAD_HALF_FN operator float() const { return gpuad_bits_float((unsigned int)bits << 16); }
};
#endif
