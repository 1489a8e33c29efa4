// Scan kernels: the fast forms (the loop over T parallel over channel blocks, the chunked
// form across T, the fused selective scan with its recomputing backward) against the plain
// reference loops, over awkward sizes (T = 1, T = 63 with chunks that do not divide it,
// D = 65 across a channel block, N = 1, 5, 16, 32 and 37), in f64 and f32, on 1 and 2 threads
// and at every SIMD level the CPU has; and the shape errors.
#include <doctest/doctest.h>

#include <string>

#include "autograd/ops.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/scan.h"
#include "tests/test_util.h"

using namespace tz;
using testing::rel_rms;

namespace {
struct SelInputs {
  Tensor u, delta, A, Bm, Cm, Dskip, z, h0;
};
SelInputs sel_inputs(int64_t B, int64_t T, int64_t D, int64_t N, DType dt, uint64_t seed, bool optional) {
  Generator gen(seed);
  SelInputs s{.u = randn({B, T, D}, gen, dt),
              .delta = rand({B, T, D}, gen, dt, 0.01, 1.5),
              .A = rand({D, N}, gen, dt, -4.0, -0.1),
              .Bm = randn({B, T, N}, gen, dt),
              .Cm = randn({B, T, N}, gen, dt)};
  if (optional) {
    s.Dskip = randn({D}, gen, dt);
    s.z = randn({B, T, D}, gen, dt);
    s.h0 = randn({B, D, N}, gen, dt);
  }
  return s;
}

// The worst relative RMS error of the fast forward and backward against the references.
double selective_fast_vs_ref(const SelInputs& s, int64_t chunk) {
  const int64_t B = s.u.size(0), T = s.u.size(1), D = s.u.size(2), N = s.A.size(1);
  SelectiveScanOptions fast{.chunk = chunk}, ref{.reference = true};
  core::SelectiveScanForward f = core::selective_scan(s.u, s.delta, s.A, s.Bm, s.Cm, s.Dskip, s.z, s.h0, fast);
  core::SelectiveScanForward r = core::selective_scan(s.u, s.delta, s.A, s.Bm, s.Cm, s.Dskip, s.z, s.h0, ref);
  double worst = rel_rms(f.packed, r.packed);
  Generator gen(99);
  Tensor g = randn({B, T + N, D}, gen, s.u.dtype());
  core::SelectiveScanGrads a =
      core::selective_scan_backward(g, f, s.u, s.delta, s.A, s.Bm, s.Cm, s.Dskip, s.z, s.h0, fast);
  core::SelectiveScanGrads b =
      core::selective_scan_backward(g, r, s.u, s.delta, s.A, s.Bm, s.Cm, s.Dskip, s.z, s.h0, ref);
  for (auto [x, y] : {std::pair{a.du, b.du},
                      {a.ddelta, b.ddelta},
                      {a.dA, b.dA},
                      {a.dBm, b.dBm},
                      {a.dCm, b.dCm},
                      {a.dDskip, b.dDskip},
                      {a.dz, b.dz},
                      {a.dh0, b.dh0}}) {
    CHECK(x.defined() == y.defined());
    if (x.defined()) worst = std::max(worst, rel_rms(x, y));
  }
  return worst;
}

double scan_fast_vs_ref(int64_t B, int64_t T, int64_t D, bool complex, bool with_h0, int64_t chunk, DType dt) {
  Generator gen(uint64_t(T * 131 + D));
  Shape s = complex ? Shape{B, T, D, 2} : Shape{B, T, D};
  Tensor a = rand(s, gen, dt, -1.0, 1.0), b = randn(s, gen, dt), g = randn(s, gen, dt);
  Tensor h0 = with_h0 ? randn(complex ? Shape{B, D, 2} : Shape{B, D}, gen, dt) : Tensor();
  ScanOptions fast{.chunk = chunk, .complex = complex}, ref{.complex = complex, .reference = true};
  Tensor hf = core::scan(a, b, h0, fast), hr = core::scan(a, b, h0, ref);
  core::ScanGrads x = core::scan_backward(g, hf, a, h0, fast), y = core::scan_backward(g, hr, a, h0, ref);
  double worst = std::max({rel_rms(hf, hr), rel_rms(x.da, y.da), rel_rms(x.db, y.db)});
  if (with_h0) worst = std::max(worst, rel_rms(x.dh0, y.dh0));
  return worst;
}
}  // namespace

TEST_CASE("scan kernels: the loop and the chunked form vs the reference (T 1 and 63, D 65, chunks 1, 4, 10, 64)") {
  const int threads = get_num_threads();
  for (int nt : {1, 2}) {
    set_num_threads(nt);
    for (DType dt : {DType::f64, DType::f32})
      for (bool complex : {false, true})
        for (int64_t T : {1, 63})
          for (int64_t chunk : {0, 1, 4, 10, 64})
            for (bool h0 : {false, true}) {
              INFO("threads ", nt, " ", dtype_name(dt), " complex ", complex, " T ", T, " chunk ", chunk, " h0 ", h0);
              const double err = scan_fast_vs_ref(3, T, 65, complex, h0, chunk, dt);
              CHECK(err <= (dt == DType::f64 ? 1e-13 : 2e-6));
            }
  }
  set_num_threads(threads);
}

TEST_CASE("scan: a chunked run with decays underflowing to 0 stays finite and equals the loop") {
  // a = 1e-30 everywhere: any chunk's product underflows (f32: to 0 after two steps).
  for (DType dt : {DType::f32, DType::f64}) {
    Generator gen(5);
    Tensor a = full({2, 40, 9}, 1e-30, dt), b = randn({2, 40, 9}, gen, dt), h0 = randn({2, 9}, gen, dt);
    Tensor hc = core::scan(a, b, h0, {.chunk = 7}), hr = core::scan(a, b, h0, {.reference = true});
    CHECK(testing::all_finite(hc));
    CHECK(rel_rms(hc, hr) <= 1e-6);
    core::ScanGrads g = core::scan_backward(hc, hc, a, h0, {.chunk = 7});
    CHECK(testing::all_finite(g.da));
    CHECK(testing::all_finite(g.dh0));
  }
}

TEST_CASE("selective_scan kernels: fused forward and recomputing backward vs the reference") {
  const int threads = get_num_threads();
  for (int nt : {1, 2}) {
    set_num_threads(nt);
    for (SimdLevel level : {SimdLevel::off, SimdLevel::avx2, SimdLevel::avx512}) {
      set_simd_level(level);  // clamped to what the CPU has
      for (DType dt : {DType::f64, DType::f32})
        for (auto [T, D, N, chunk] : {std::tuple{1, 3, 1, 64},
                                      {63, 17, 16, 8},
                                      {63, 33, 5, 64},
                                      {20, 8, 16, 1},
                                      {40, 16, 37, 16},
                                      {9, 48, 32, 4}})
          for (bool optional : {false, true}) {
            INFO("threads ", nt, " simd ", std::string(simd_level_name(simd_level())), " ", std::string(dtype_name(dt)),
                 " T ", T, " D ", D, " N ", N, " chunk ", chunk, " optional ", optional);
            const double err = selective_fast_vs_ref(sel_inputs(2, T, D, N, dt, uint64_t(T + D + N), optional), chunk);
            CHECK(err <= (dt == DType::f64 ? 1e-12 : 2e-5));
          }
    }
    set_simd_enabled(true);
  }
  set_num_threads(threads);
}

TEST_CASE("selective_scan: results do not depend on the checkpoint chunk beyond rounding, B = 1 splits channels") {
  SelInputs s = sel_inputs(1, 50, 40, 16, DType::f64, 3, true);
  core::SelectiveScanForward a = core::selective_scan(s.u, s.delta, s.A, s.Bm, s.Cm, s.Dskip, s.z, s.h0, {.chunk = 3});
  core::SelectiveScanForward b = core::selective_scan(s.u, s.delta, s.A, s.Bm, s.Cm, s.Dskip, s.z, s.h0, {.chunk = 50});
  CHECK(testing::max_abs_diff(a.packed, b.packed) == 0);  // the forward never depends on it
  CHECK(a.ckpt.size(1) == 17);
  CHECK(b.ckpt.size(1) == 1);
}

TEST_CASE("scan and selective_scan errors name the shapes") {
  CHECK_THROWS_WITH_AS(core::scan(zeros({2, 3, 4}), zeros({2, 3, 5}), Tensor(), {}), doctest::Contains("[2, 3, 5]"),
                       Error);
  CHECK_THROWS_WITH_AS(core::scan(zeros({2, 3, 4}), zeros({2, 3, 4}), zeros({2, 5}), {}),
                       doctest::Contains("h0 must be [2, 4]"), Error);
  CHECK_THROWS_WITH_AS(core::scan(zeros({2, 3, 4}), zeros({2, 3, 4}), Tensor(), {.complex = true}),
                       doctest::Contains("complex"), Error);
  SelInputs s = sel_inputs(2, 5, 3, 4, DType::f32, 1, false);
  CHECK_THROWS_WITH_AS(core::selective_scan(s.u, s.delta, zeros({3, 4}), zeros({2, 5, 3}), s.Cm, {}, {}, {}, {}),
                       doctest::Contains("B must be [B, T, N] = [2, 5, 4]"), Error);
  CHECK_THROWS_WITH_AS(core::selective_scan(s.u, s.delta.to(DType::f64), s.A, s.Bm, s.Cm, {}, {}, {}, {}),
                       doctest::Contains("delta is f64"), Error);
}

TEST_CASE("conv1d_causal_continue: a prefill, single steps and chunks from the rolling state == one conv") {
  Generator gen(8);
  for (int64_t K : {1, 2, 4}) {
    CAPTURE(K);
    Tensor x = randn({2, 11, 5}, gen, DType::f64), w = randn({5, K}, gen, DType::f64), b = randn({5}, gen, DType::f64);
    Tensor full = conv1d_causal(x, w, b);
    Tensor state = zeros({2, K - 1, 5}, DType::f64);
    std::vector<Tensor> parts;
    for (auto [t0, len] : {std::pair{0, 3}, {3, 1}, {4, 1}, {5, 6}})
      parts.push_back(conv1d_causal_continue(x.narrow(1, t0, len), w, b, state));
    CHECK(testing::max_abs_diff(cat(parts, 1), full) <= 1e-14);
    if (K > 1) CHECK(testing::max_abs_diff(state, x.narrow(1, 11 - (K - 1), K - 1)) == 0);
  }
  Tensor bad = zeros({2, 2, 5});
  CHECK_THROWS_WITH_AS(conv1d_causal_continue(zeros({2, 3, 5}), zeros({5, 4}), Tensor(), bad),
                       doctest::Contains("state must be [B, K - 1, C] = [2, 3, 5]"), Error);
}
