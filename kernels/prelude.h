// gpuad kernel prelude: what every generated kernel source starts with, for nvcc/NVRTC and for a host C++
// compiler alike. GPUAD_FN marks the generated per-element functions (inlined device functions on the GPU,
// static inline functions on the CPU); the guard lets many kernel sources share one translation unit. The
// gpuad_* helpers are the functions of the rows' language whose real and complex forms differ (the real forms
// here, the complex ones in prelude_complex.h): abs, real, imag and conj, sign, nan_to_num; and where's
// condition, nonzero (of any type) is true.
#ifndef GPUAD_PRELUDE_H
#define GPUAD_PRELUDE_H
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GPUAD_FN __device__ __forceinline__
#else
#include <cmath>
using namespace std;  // float overloads of the math functions, as CUDA provides them
#define GPUAD_FN static inline
#endif
template <typename X> GPUAD_FN bool gpuad_truth(X x) { return x != X(0); }
template <typename X> GPUAD_FN X gpuad_abs(X x) { return fabs(x); }
template <typename X> GPUAD_FN X gpuad_real(X x) { return x; }
template <typename X> GPUAD_FN X gpuad_imag(X) { return X(0); }
template <typename X> GPUAD_FN X gpuad_conj(X x) { return x; }
// sign(nan) is nan, as in NumPy
template <typename X> GPUAD_FN X gpuad_sign(X x) { return x != x ? x : (X)((x > X(0)) - (x < X(0))); }
// nan -> 0, +-inf -> the largest finite value of X with that sign (NumPy's defaults)
template <typename X> GPUAD_FN X gpuad_nan_to_num(X x) {
    const double largest = sizeof(X) == 4 ? 3.4028234663852886e38 : 1.7976931348623157e308;
    return x != x ? X(0) : (x - x == X(0) ? x : (X)((x > X(0) ? 1.0 : -1.0) * largest));
}
#endif
