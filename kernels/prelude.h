// gpuad kernel prelude: what every generated kernel source starts with, for nvcc/NVRTC and for a host C++
// compiler alike. GPUAD_FN marks the generated per-element functions (inlined device functions on the GPU,
// static inline functions on the CPU); the guard lets many kernel sources share one translation unit.
#ifndef GPUAD_PRELUDE_H
#define GPUAD_PRELUDE_H
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GPUAD_FN __device__ __forceinline__
#else
#include <cmath>
using namespace std;  // float overloads of the math functions, as CUDA provides them
#define GPUAD_FN static inline
#endif
#endif
