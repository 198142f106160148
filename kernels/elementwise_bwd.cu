// GPU wrapper of a generated backward kernel: a grid-stride loop over the elements of the region's broadcast
// shape, calling the generated per-element function (the same text the CPU build wraps).
$prelude
$body
extern "C" __global__ void $name($params) {
    const long long step = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        $namespace::at(i, $args);
    }
}
