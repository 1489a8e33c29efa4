// AVX2+FMA f32 elementwise kernels (compiled with -mavx2 -mfma; called only when
// tz::simd_enabled()): elementwise_simd.inl over 8-wide vectors. The math functions (exp,
// tanh, gelu, ...) and their measured errors are in vecmath.h.
#include <cmath>

#include "core/kernels/elementwise.h"
#include "core/kernels/vecmath.h"

namespace tz::kernels::avx2 {

using V = simd::F8;

#include "core/kernels/elementwise_simd.inl"

}  // namespace tz::kernels::avx2
