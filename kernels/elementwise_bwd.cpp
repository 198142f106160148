// CPU wrapper of a generated backward kernel: a plain loop over the elements of the region's broadcast shape,
// calling the generated per-element function (the same text the GPU build wraps). Loaded with ctypes.
$prelude
$body
extern "C" void $name($params) {
    for (long long i = 0; i < n; ++i) {
        $namespace::at(i, $args);
    }
}
