// gpuad half-precision storage types, for kernels whose operands are float16 or bfloat16: gpuad_f16 and
// gpuad_bf16 are only loaded (converted to float, the kernel's compute type T) and stored (rounded to nearest
// even from float). On the GPU they are CUDA's __half and __nv_bfloat16; on the CPU, GCC/Clang's _Float16 and a
// two-byte struct with the same rounding as CUDA's __float2bfloat16.
#ifndef GPUAD_PRELUDE_HALF_H
#define GPUAD_PRELUDE_HALF_H
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#include <cuda_fp16.h>
#include <cuda_bf16.h>
typedef __half gpuad_f16;
typedef __nv_bfloat16 gpuad_bf16;
#else
#include <cstring>
typedef _Float16 gpuad_f16;
struct gpuad_bf16 {
    unsigned short bits;
    gpuad_bf16() = default;
    gpuad_bf16(float f) {
        unsigned int u;
        std::memcpy(&u, &f, 4);
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            bits = (unsigned short)((u >> 16) | 0x40u);  // a quiet NaN
        } else {
            u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
            bits = (unsigned short)(u >> 16);
        }
    }
    operator float() const {
        unsigned int u = (unsigned int)bits << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
};
#endif
#endif
