// The causal long convolution (core/long_conv.h): the FFT path against the direct O(L^2)
// sums in f64 (outputs and the gradients of u, k and D) over awkward lengths (L = 1, 5, 33,
// 64, 100: FFT lengths 2 to 256), the f32 path, 1 and 2 threads giving the same bits, the
// composite of plain ops, shape errors; the tail form (a decoding step's last T outputs) against
// the full convolution. (The FFT path's speed against the direct sums: bench/long_conv_step.)
#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops_long_conv.h"
#include "core/copy.h"
#include "core/error.h"
#include "core/long_conv.h"
#include "core/parallel.h"
#include "core/random.h"
#include "tests/test_util.h"

namespace tz::testing {
namespace {
struct Inputs {
  Tensor u, k, D, g;
};
Inputs inputs(int64_t B, int64_t C, int64_t L, uint64_t seed, DType dt = DType::f64) {
  Generator gen(seed);
  return {randn({B, C, L}, gen, dt), randn({C, L}, gen, dt), randn({C}, gen, dt), randn({B, C, L}, gen, dt)};
}
}  // namespace

TEST_CASE("long_conv: FFT == direct causal conv in f64 to 1e-10, outputs and gradients of u, k, D") {
  double worst_y = 0, worst_g = 0;
  for (int64_t L : {1, 5, 33, 64, 100}) {
    for (bool with_D : {true, false}) {
      CAPTURE(L);
      CAPTURE(with_D);
      Inputs in = inputs(2, 3, L, 10 + uint64_t(L));
      Tensor D = with_D ? in.D : Tensor();
      Tensor y = core::long_conv(in.u, in.k, D), yr = core::long_conv(in.u, in.k, D, {.reference = true});
      const double ey = rel_rms(y, yr);
      CHECK(ey <= 1e-10);
      core::LongConvGrads g = core::long_conv_backward(in.g, in.u, in.k, D);
      core::LongConvGrads gr = core::long_conv_backward(in.g, in.u, in.k, D, {.reference = true});
      double eg = std::max(rel_rms(g.du, gr.du), rel_rms(g.dk, gr.dk));
      if (with_D) eg = std::max(eg, rel_rms(g.dD, gr.dD));
      CHECK(!g.dD.defined() == !with_D);
      CHECK(eg <= 1e-10);
      worst_y = std::max(worst_y, ey);
      worst_g = std::max(worst_g, eg);
    }
  }
  MESSAGE("FFT vs direct, relative rms: y ", worst_y, ", grads ", worst_g);
  // y at t = 0 is (k_0 + D) u_0: the convention, by hand
  Inputs in = inputs(1, 1, 4, 3);
  Tensor y = core::long_conv(in.u, in.k, in.D);
  CHECK(std::abs(y.at({0, 0, 0}) - (in.k.at({0, 0}) + in.D.at({0})) * in.u.at({0, 0, 0})) <= 1e-14);
}

TEST_CASE("long_conv: f32 path, threads give the same bits, the composite of plain ops agrees") {
  Inputs in = inputs(3, 5, 77, 21);
  Inputs f = inputs(3, 5, 77, 21, DType::f32);
  Tensor yr = core::long_conv(in.u, in.k, in.D, {.reference = true});
  CHECK(rel_rms(core::long_conv(f.u, f.k, f.D), yr) <= 1e-5);
  core::LongConvGrads gr = core::long_conv_backward(in.g, in.u, in.k, in.D, {.reference = true});
  core::LongConvGrads gf = core::long_conv_backward(f.g, f.u, f.k, f.D);
  CHECK(rel_rms(gf.du, gr.du) <= 1e-5);
  CHECK(rel_rms(gf.dk, gr.dk) <= 1e-5);
  CHECK(rel_rms(gf.dD, gr.dD) <= 1e-5);
  const int prev = get_num_threads();
  const bool passive = passive_wait_sizing();
  set_passive_wait_sizing(false);
  set_num_threads(1);
  Tensor y1 = core::long_conv(f.u, f.k, f.D);
  core::LongConvGrads g1 = core::long_conv_backward(f.g, f.u, f.k, f.D);
  set_num_threads(2);
  Tensor y2 = core::long_conv(f.u, f.k, f.D);
  core::LongConvGrads g2 = core::long_conv_backward(f.g, f.u, f.k, f.D);
  set_num_threads(prev);
  set_passive_wait_sizing(passive);
  CHECK(max_abs_diff(y1, y2) == 0);
  CHECK(max_abs_diff(g1.dk, g2.dk) == 0);
  CHECK(max_abs_diff(g1.du, g2.du) == 0);
  // the op against its composite (a Toeplitz matmul), non-contiguous u
  Tensor u = non_contiguous(in.u);
  CHECK(!u.is_contiguous());
  CHECK(max_abs_diff(long_conv(u, in.k, in.D), long_conv_composite(u, in.k, in.D)) <= 1e-12);
}

TEST_CASE("long_conv: shape and dtype errors name what was expected") {
  Inputs in = inputs(2, 3, 8, 1);
  CHECK_THROWS_WITH_AS(core::long_conv(in.u, in.k.narrow(1, 0, 7), in.D), doctest::Contains("k must be [C, L]"), Error);
  CHECK_THROWS_WITH_AS(core::long_conv(in.u, in.k, in.D.narrow(0, 0, 2)), doctest::Contains("D must be [C]"), Error);
  CHECK_THROWS_WITH_AS(core::long_conv(in.u, in.k.to(DType::f32), in.D), doctest::Contains("like u"), Error);
}

TEST_CASE("long_conv_tail: the last T outputs of a history view equal the full convolution's") {
  double worst64 = 0, worst32 = 0;
  for (DType dt : {DType::f64, DType::f32})
    for (int64_t L : {1, 7, 100, 300})
      for (int64_t T : {int64_t(1), int64_t(3), L}) {
        if (T > L) continue;
        const int64_t B = 2, C = 70;  // C crosses the kernel's 64-channel blocks
        Inputs in = inputs(B, C, L, uint64_t(L * 10 + T), dt);
        // the history time-major, as the first L rows of a longer buffer (a batch stride)
        Generator gen(3);
        Tensor buffer = randn({B, L + 5, C}, gen, dt);
        Tensor hist = buffer.narrow(1, 0, L);
        core::copy_(hist, in.u.transpose(1, 2));
        for (bool with_D : {false, true}) {
          const Tensor D = with_D ? in.D : Tensor();
          Tensor want = core::long_conv(in.u, in.k, D, {.reference = true}).transpose(1, 2).narrow(1, L - T, T);
          Tensor got = core::long_conv_tail(hist, in.k.transpose(0, 1), D, T);
          REQUIRE(got.shape() == Shape({B, T, C}));
          const double e = rel_rms(got, want);
          (dt == DType::f64 ? worst64 : worst32) = std::max(dt == DType::f64 ? worst64 : worst32, e);
        }
      }
  MESSAGE("tail vs full direct convolution, relative RMS: f64 ", worst64, ", f32 ", worst32);
  CHECK(worst64 <= 1e-13);
  CHECK(worst32 <= 1e-5);
  Inputs in = inputs(1, 3, 8, 1);
  Tensor h = in.u.transpose(1, 2);
  CHECK_THROWS_WITH_AS(core::long_conv_tail(h, in.k, in.D, 1), doctest::Contains("k must be [L, C]"), Error);
  CHECK_THROWS_WITH_AS(core::long_conv_tail(h, in.k.transpose(0, 1), in.D, 9), doctest::Contains("T must be in"),
                       Error);
}

}  // namespace tz::testing
