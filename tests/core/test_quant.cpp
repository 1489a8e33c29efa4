// The quantized weight formats (core/kernels/quant.h): round-trip error bounds per block, and
// every GEMV kernel this CPU runs against its plain reference, at odd sizes and tails.
#include <algorithm>
#include <bit>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/kernels/quant.h"
#include "tests/test_util.h"

using namespace tz;
using namespace tz::kernels;

namespace {

std::vector<float> random_values(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

double rel_rms(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// A weight matrix with rows of very different magnitudes, an all-zero block and an outlier,
// so that per-block scales matter.
std::vector<float> awkward_weights(int64_t N, int64_t K, uint32_t seed) {
  std::vector<float> w = random_values(N * K, seed);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) w[size_t(n * K + k)] *= std::pow(10.0f, float(n % 5) - 2.0f);
  for (int64_t k = 0; k < std::min<int64_t>(K, kQ8Block); ++k) w[size_t(k)] = 0.0f;
  if (N > 1 && K >= 2 * kQ8Block) w[size_t(K + kQ8Block + 3)] = 50.0f;
  return w;
}

struct Q8Matrix {
  std::vector<int8_t> q;
  std::vector<float> s;
};

Q8Matrix quantize(const std::vector<float>& w, int64_t N, int64_t K) {
  Q8Matrix m{std::vector<int8_t>(size_t(N * K)), std::vector<float>(size_t(N * K / kQ8Block))};
  quantize_q8_0(m.q.data(), m.s.data(), w.data(), N, K);
  return m;
}

}  // namespace

TEST_CASE("q8_0 round trip: error at most half a scale per element, per block") {
  const int64_t N = 9, K = 160;
  const std::vector<float> w = awkward_weights(N, K, 1);
  const Q8Matrix m = quantize(w, N, K);
  std::vector<float> back(size_t(N * K));
  dequantize_q8_0(back.data(), m.q.data(), m.s.data(), N, K);
  double worst = 0;  // max over elements of |w - deq| / (d / 2)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t b = 0; b < K / kQ8Block; ++b) {
      const float d = m.s[size_t(n * (K / kQ8Block) + b)];
      float amax = 0;
      int qmax = 0;
      for (int64_t k = b * kQ8Block; k < (b + 1) * kQ8Block; ++k) {
        const size_t at = size_t(n * K + k);
        amax = std::max(amax, std::fabs(w[at]));
        qmax = std::max(qmax, std::abs(int(m.q[at])));
        CHECK(std::abs(int(m.q[at])) <= 127);
        const double err = std::fabs(double(w[at]) - double(back[at]));
        if (d == 0)
          CHECK(err == 0);
        else
          worst = std::max(worst, err / (0.5 * d));
      }
      CHECK(d == doctest::Approx(amax / 127.0f).epsilon(1e-6));  // symmetric: scale = max|w| / 127
      CHECK(qmax == (amax > 0 ? 127 : 0));                       // the largest value uses the full range
    }
  CAPTURE(worst);
  CHECK(worst <= 1.0 + 1e-5);
  CHECK(worst > 0.9);  // the bound is tight, so a looser rounding (truncation: 2.0) would fail
}

TEST_CASE("q8_0 refuses a K that is not a multiple of the block") {
  std::vector<float> w(40, 1.0f);
  std::vector<int8_t> q(40);
  std::vector<float> s(2);
  CHECK_THROWS_WITH_AS(quantize_q8_0(q.data(), s.data(), w.data(), 1, 40), doctest::Contains("multiple of the block"),
                       tz::Error);
}

TEST_CASE("bf16 round trip: relative error at most 2^-8, ties to even") {
  // bf16 keeps 8 significant bits (7 stored), so rounding to nearest is off by at most half a
  // unit in the last place: 2^-8 of the value.
  const std::vector<float> w = random_values(4099, 2, 3.0f);
  std::vector<uint16_t> b(w.size());
  std::vector<float> back(w.size());
  quantize_bf16(b.data(), w.data(), int64_t(w.size()));
  dequantize_bf16(back.data(), b.data(), int64_t(w.size()));
  double worst = 0;
  for (size_t i = 0; i < w.size(); ++i) worst = std::max(worst, std::fabs(double(back[i]) - w[i]) / std::fabs(w[i]));
  CAPTURE(worst);
  CHECK(worst <= std::ldexp(1.0, -8));
  CHECK(worst > std::ldexp(1.0, -9));  // tight: truncation would reach 2^-7
  // Exact halfway cases go to the even neighbour.
  const float ties[] = {1.0f + std::ldexp(1.0f, -8), 1.0f + 3 * std::ldexp(1.0f, -8)};
  uint16_t t[2];
  quantize_bf16(t, ties, 2);
  CHECK(t[0] == 0x3f80);  // 1.0
  CHECK(t[1] == 0x3f82);  // 1 + 2^-6
}

TEST_CASE("q8_0 GEMV kernels match their references at odd sizes") {
  struct Size {
    int64_t N, K;
  };
  for (const Q8Kernel& kern : q8_gemv_kernels()) {
    if (!kern.runs) continue;
    for (Size sz : {Size{1, 32}, Size{7, 96}, Size{33, 160}, Size{19, 544}, Size{3, 2080}})
      for (int64_t M = 1; M <= kQuantGemvMaxM; ++M)
        for (bool bias : {false, true}) {
          const std::string name = kern.name;
          CAPTURE(name);
          CAPTURE(sz.N);
          CAPTURE(sz.K);
          CAPTURE(M);
          const int64_t N = sz.N, K = sz.K, ldx = K + 5, ldy = N + 3;
          const std::vector<float> w = awkward_weights(N, K, uint32_t(N + K));
          const Q8Matrix m = quantize(w, N, K);
          const std::vector<float> x = random_values(M * ldx, uint32_t(7 * M + K));
          const std::vector<float> b = random_values(N, 3);
          std::vector<float> y(size_t(M * ldy), NAN), ref(size_t(M * ldy), NAN);
          QuantGemvArgs g{y.data(), ldy, x.data(), ldx, M, N, K, bias ? b.data() : nullptr};
          Q8Activations xq;
          quantize_activations(xq, g);
          kern.fn(g, xq, m.q.data(), m.s.data(), 0, N);
          g.y = ref.data();
          kern.reference(g, xq, m.q.data(), m.s.data(), 0, N);
          std::vector<float> yv, rv;
          for (int64_t i = 0; i < M; ++i)
            for (int64_t n = 0; n < N; ++n) {
              yv.push_back(y[size_t(i * ldy + n)]);
              rv.push_back(ref[size_t(i * ldy + n)]);
              CHECK(std::isnan(y[size_t(i * ldy + N)]));  // nothing written past the row
            }
          CHECK(rel_rms(yv, rv) <= 2e-6);
        }
  }
}

TEST_CASE("quantize_activations: the AVX-512 form gives the plain form's bytes") {
  if (!cpu_has_avx512()) return;
  for (int64_t K : {32, 96, 160, 544}) {
    CAPTURE(K);
    const int64_t M = 3, ldx = K + 7;
    std::vector<float> x = random_values(M * ldx, uint32_t(K));
    // Blocks of row 0: zeros, values below ~4e-37 (the f64 path), ties after scaling by
    // 127 / max|x| = 1 (2.5 -> 2, -3.5 -> -4, even), a lone outlier.
    std::fill_n(x.begin(), 32, 0.0f);
    if (K >= 64)
      for (int64_t k = 32; k < 64; ++k) x[size_t(k)] = (k % 2 ? -1e-38f : 3e-39f) * float(k);
    if (K >= 96) {
      x[64] = 127.0f, x[65] = 2.5f, x[66] = -3.5f, x[67] = 0.5f, x[68] = -0.5f, x[69] = -127.0f;
      for (int64_t k = 70; k < 96; ++k) x[size_t(k)] = float(k % 7) - 3.0f;
    }
    x[size_t(ldx + 5)] = 1e4f;
    const QuantGemvArgs g{nullptr, 0, x.data(), ldx, M, 1, K, nullptr};
    Q8Activations ref, simd;
    quantize_activations_ref(ref, g);
    const int64_t nm = (K + 63) / 64;
    simd.q.resize(size_t(M * K)), simd.a.resize(size_t(M * K)), simd.neg.assign(size_t(M * nm), 0);
    simd.d.resize(size_t(M * K / kQ8Block)), simd.dl.resize(size_t(M * K / 4));
    for (int64_t i = 0; i < M; ++i)
      quantize_row_avx512(simd.q.data() + i * K, simd.a.data() + i * K, simd.neg.data() + i * nm,
                          simd.d.data() + i * K / kQ8Block, simd.dl.data() + i * K / 4, x.data() + i * ldx, K);
    CHECK(simd.q == ref.q);
    CHECK(simd.a == ref.a);
    CHECK(simd.neg == ref.neg);
    CHECK(simd.d == ref.d);
    CHECK(simd.dl == ref.dl);
    if (K >= 96) CHECK(std::vector<int8_t>(&ref.q[64], &ref.q[70]) == std::vector<int8_t>{127, 2, -4, 0, 0, -127});
    CHECK(std::any_of(ref.neg.begin(), ref.neg.end(), [](uint64_t m) { return m != 0; }));
  }
}

TEST_CASE("q8_0 GEMV: the two semantics stay within the quantization error of f32") {
  // dequant (x in f32) and q8q8 (x quantized too) against the f32 product with the original
  // weights: both errors small, q8q8's larger by x's own rounding.
  const int64_t M = 2, N = 64, K = 512;
  const std::vector<float> w = random_values(N * K, 11), x = random_values(M * K, 12);
  const Q8Matrix m = quantize(w, N, K);
  std::vector<float> exact(size_t(M * N)), deq(size_t(M * N)), q8q8(size_t(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(w[size_t(n * K + k)]) * x[size_t(i * K + k)];
      exact[size_t(i * N + n)] = float(s);
    }
  QuantGemvArgs g{deq.data(), N, x.data(), K, M, N, K, nullptr};
  Q8Activations xq;
  quantize_activations(xq, g);
  gemv_q8_0_ref(g, xq, m.q.data(), m.s.data(), 0, N);
  g.y = q8q8.data();
  gemv_q8q8_ref(g, xq, m.q.data(), m.s.data(), 0, N);
  const double e_deq = rel_rms(deq, exact), e_q8 = rel_rms(q8q8, exact);
  CAPTURE(e_deq);
  CAPTURE(e_q8);
  CHECK(e_deq < 0.01);
  CHECK(e_q8 < 0.015);
  CHECK(e_deq > 1e-4);  // the weights really were rounded
}

TEST_CASE("bf16 GEMV kernels match the reference at odd sizes and K tails") {
  struct Size {
    int64_t N, K;
  };
  for (const Bf16Kernel& kern : bf16_gemv_kernels()) {
    if (!kern.runs) continue;
    for (Size sz : {Size{1, 1}, Size{5, 7}, Size{3, 31}, Size{17, 33}, Size{9, 100}, Size{4, 513}, Size{2, 2048}})
      for (int64_t M = 1; M <= kQuantGemvMaxM; ++M) {
        const std::string name = kern.name;
        CAPTURE(name);
        CAPTURE(sz.N);
        CAPTURE(sz.K);
        CAPTURE(M);
        const int64_t N = sz.N, K = sz.K, ldx = K + 3, ldy = N + 1;
        const std::vector<float> wf = random_values(N * K, uint32_t(N * K + 1));
        std::vector<uint16_t> w(wf.size());
        quantize_bf16(w.data(), wf.data(), N * K);
        const std::vector<float> x = random_values(M * ldx, uint32_t(M + 99)), b = random_values(N, 5);
        std::vector<float> y(size_t(M * ldy), NAN), ref(size_t(M * ldy), NAN);
        QuantGemvArgs g{y.data(), ldy, x.data(), ldx, M, N, K, b.data()};
        kern.fn(g, w.data(), 0, N);
        g.y = ref.data();
        gemv_bf16_ref(g, w.data(), 0, N);
        std::vector<float> yv, rv;
        for (int64_t i = 0; i < M; ++i)
          for (int64_t n = 0; n < N; ++n) {
            yv.push_back(y[size_t(i * ldy + n)]);
            rv.push_back(ref[size_t(i * ldy + n)]);
          }
        // vdpbf16ps sees x as two bf16 (16 bits of mantissa): 2^-17 per value; the others
        // differ from the reference by f32 summation order only.
        CHECK(rel_rms(yv, rv) <= (name == "avx512_bf16" ? 2e-5 : 3e-6));
      }
  }
}

TEST_CASE("quantized GEMV dispatch at every SIMD level, M up to a prompt, threads") {
  const int64_t N = 600, K = 512;  // two GEMM tiles of W for M > 4
  const std::vector<float> w = awkward_weights(N, K, 21), b = random_values(N, 22);
  const Q8Matrix m = quantize(w, N, K);
  std::vector<uint16_t> wb(w.size());
  quantize_bf16(wb.data(), w.data(), N * K);
  for (SimdLevel level : testing::simd_levels()) {
    testing::SimdLevelGuard guard(level);
    const Q8Kernel& qk = q8_gemv_kernel();
    const std::string level_name = simd_level_name(level), kernel = qk.name;
    CAPTURE(level_name);
    CAPTURE(kernel);
    CHECK(qk.level <= int(level));
    for (int64_t M : {1, 3, 4, 5, 17, 48, 49}) {
      CAPTURE(M);
      const std::vector<float> x = random_values(M * K, uint32_t(M));
      std::vector<float> y(size_t(M * N), NAN), ref(size_t(M * N), NAN);
      QuantGemvArgs g{y.data(), N, x.data(), K, M, N, K, b.data()};
      gemv_q8_0(g, m.q.data(), m.s.data());
      g.y = ref.data();
      Q8Activations xq;
      quantize_activations(xq, g);
      // Up to 48 rows the kernel runs 4 rows at a time, past that the GEMM on dequantized
      // tiles (the dequant semantics); bf16 switches at 16, with one semantics.
      (M > 48 ? gemv_q8_0_ref : qk.reference)(g, xq, m.q.data(), m.s.data(), 0, N);
      CHECK(rel_rms(y, ref) <= 2e-6);

      std::vector<float> yb(size_t(M * N), NAN), rb(size_t(M * N), NAN);
      QuantGemvArgs gb{yb.data(), N, x.data(), K, M, N, K, b.data()};
      gemv_bf16(gb, wb.data());
      gb.y = rb.data();
      gemv_bf16_ref(gb, wb.data(), 0, N);
      CHECK(rel_rms(yb, rb) <= 3e-6);
    }
    // Threads split the output rows only: the same bits on 1 and 2 threads.
    const int64_t Nbig = 4096, M = 2;
    const std::vector<float> wbig = random_values(Nbig * K, 31), x = random_values(M * K, 32);
    const Q8Matrix mb = quantize(wbig, Nbig, K);
    std::vector<float> y1(size_t(M * Nbig)), y2(size_t(M * Nbig));
    const int threads = get_num_threads();
    set_num_threads(1);
    gemv_q8_0({y1.data(), Nbig, x.data(), K, M, Nbig, K, nullptr}, mb.q.data(), mb.s.data());
    set_num_threads(2);
    gemv_q8_0({y2.data(), Nbig, x.data(), K, M, Nbig, K, nullptr}, mb.q.data(), mb.s.data());
    set_num_threads(threads);
    CHECK(y1 == y2);
  }
}
