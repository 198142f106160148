// gpuad complex types, for kernels with a complex64 or complex128 operand or compute type: gpuad_complex<R> is
// CuPy's thrust::complex on the GPU (<cupy/complex.cuh>, which CuPy's RawModule finds on its own include path, as
// its own elementwise kernels do) and std::complex on the CPU. Both have the same layout (two R, real first), the
// same operators and, found by argument-dependent lookup, the same exp, log, sqrt, pow, sin ... asinh; what one of
// them lacks is added here, with NumPy's definitions: log1p, expm1, log2, rint (the host; cupy/complex.cuh has
// them), exp2 (both), fmax/fmin, and NumPy's ordering of complex values (lexicographic: the host; CuPy's header
// has it) for maximum, minimum, clip and the partials that compare.
#ifndef GPUAD_PRELUDE_COMPLEX_H
#define GPUAD_PRELUDE_COMPLEX_H
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#include <cupy/complex.cuh>
template <typename R> using gpuad_complex = thrust::complex<R>;
#else
#include <complex>
template <typename R> using gpuad_complex = std::complex<R>;
template <typename R> GPUAD_FN std::complex<R> log1p(const std::complex<R>& z) { return log(z + R(1)); }
template <typename R> GPUAD_FN std::complex<R> expm1(const std::complex<R>& z) { return exp(z) - R(1); }
template <typename R> GPUAD_FN std::complex<R> log2(const std::complex<R>& z) {
    return log(z) * R(1.4426950408889634);
}
template <typename R> GPUAD_FN std::complex<R> rint(const std::complex<R>& z) {
    return std::complex<R>(rint(z.real()), rint(z.imag()));
}
// NumPy's order of complex values (CGT, CGE, CLT, CLE of its loops; cupy/complex.cuh has its own)
template <typename R> static inline bool gpuad_cgt(R xr, R xi, R yr, R yi) {
    return (xr > yr && xi == xi && yi == yi) || (xr == yr && xi > yi);
}
template <typename R> static inline bool gpuad_cge(R xr, R xi, R yr, R yi) {
    return (xr > yr && xi == xi && yi == yi) || (xr == yr && xi >= yi);
}
#define GPUAD_COMPLEX_COMPARE(OP, FN, X, Y)                                                                       \
    template <typename R> static inline bool operator OP(const std::complex<R>& x, const std::complex<R>& y) { \
        return FN(X.real(), X.imag(), Y.real(), Y.imag());                                                    \
    }                                                                                                         \
    template <typename R> static inline bool operator OP(const std::complex<R>& x, const R& y_) {             \
        const std::complex<R> y(y_);                                                                          \
        return FN(X.real(), X.imag(), Y.real(), Y.imag());                                                    \
    }                                                                                                         \
    template <typename R> static inline bool operator OP(const R& x_, const std::complex<R>& y) {             \
        const std::complex<R> x(x_);                                                                          \
        return FN(X.real(), X.imag(), Y.real(), Y.imag());                                                    \
    }
GPUAD_COMPLEX_COMPARE(>, gpuad_cgt, x, y)
GPUAD_COMPLEX_COMPARE(>=, gpuad_cge, x, y)
GPUAD_COMPLEX_COMPARE(<, gpuad_cgt, y, x)
GPUAD_COMPLEX_COMPARE(<=, gpuad_cge, y, x)
#undef GPUAD_COMPLEX_COMPARE
#endif
typedef gpuad_complex<float> gpuad_c64;
typedef gpuad_complex<double> gpuad_c128;

template <typename R> GPUAD_FN gpuad_complex<R> exp2(const gpuad_complex<R>& z) {
    return exp(z * R(0.6931471805599453));
}
template <typename R> GPUAD_FN R gpuad_abs(const gpuad_complex<R>& z) { return abs(z); }
template <typename R> GPUAD_FN R gpuad_real(const gpuad_complex<R>& z) { return z.real(); }
template <typename R> GPUAD_FN R gpuad_imag(const gpuad_complex<R>& z) { return z.imag(); }
template <typename R> GPUAD_FN gpuad_complex<R> gpuad_conj(const gpuad_complex<R>& z) {
    return gpuad_complex<R>(z.real(), -z.imag());
}
// NumPy's complex sign: z / |z|, 0 at 0
template <typename R> GPUAD_FN gpuad_complex<R> gpuad_sign(const gpuad_complex<R>& z) {
    const R m = abs(z);
    return m == R(0) ? gpuad_complex<R>(R(0), R(0)) : z / m;
}
template <typename R> GPUAD_FN gpuad_complex<R> gpuad_nan_to_num(const gpuad_complex<R>& z) {
    return gpuad_complex<R>(gpuad_nan_to_num(z.real()), gpuad_nan_to_num(z.imag()));
}
// NumPy's fmax/fmin on complex values: a NaN argument (either part) loses to the other one
template <typename R> GPUAD_FN gpuad_complex<R> fmax(const gpuad_complex<R>& x, const gpuad_complex<R>& y) {
    return (x >= y || y != y) ? x : y;
}
template <typename R> GPUAD_FN gpuad_complex<R> fmin(const gpuad_complex<R>& x, const gpuad_complex<R>& y) {
    return (x <= y || y != y) ? x : y;
}
template <typename R> GPUAD_FN gpuad_complex<R> fmax(const R& x, const gpuad_complex<R>& y) {
    return fmax(gpuad_complex<R>(x), y);
}
template <typename R> GPUAD_FN gpuad_complex<R> fmax(const gpuad_complex<R>& x, const R& y) {
    return fmax(x, gpuad_complex<R>(y));
}
template <typename R> GPUAD_FN gpuad_complex<R> fmin(const R& x, const gpuad_complex<R>& y) {
    return fmin(gpuad_complex<R>(x), y);
}
template <typename R> GPUAD_FN gpuad_complex<R> fmin(const gpuad_complex<R>& x, const R& y) {
    return fmin(x, gpuad_complex<R>(y));
}
#endif
