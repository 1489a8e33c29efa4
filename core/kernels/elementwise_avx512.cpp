// AVX-512 f32 elementwise kernels (compiled with -mavx512f/dq/bw/vl; called only when
// tz::simd_level() is avx512): elementwise_simd.inl over 16-wide vectors, equal element for
// element to the AVX2 kernels.
#include <cmath>

#include "core/kernels/elementwise.h"
#include "core/kernels/vecmath_avx512.h"

namespace tz::kernels::avx512 {

using V = simd::F16;

#include "core/kernels/elementwise_simd.inl"

}  // namespace tz::kernels::avx512
