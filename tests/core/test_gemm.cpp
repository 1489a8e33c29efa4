// GEMM kernels (own packed GEMM and OpenBLAS vs the naive reference) and the tensor-level
// matmul / linear (batch broadcasting, 1-D operands, strided inputs, errors).
// Shape letters: M, N, K as in core/kernels/gemm.h.
#include <cmath>
#include <cstring>
#include <tuple>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/kernels/gemm.h"
#include "core/kernels/gemv.h"
#include "core/linalg.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/test_util.h"

using namespace tz;
using tz::testing::rel_rms;

// CHECK_CLOSE from test_util.h re-runs rel_rms (which holds a REQUIRE) while doctest logs a
// failure, which deadlocks doctest's reporter; compute the error once, then check it.
#define CHECK_REL(a, b, tol)                                            \
  do {                                                                  \
    const double err_ = rel_rms((a), (b));                              \
    CHECK_MESSAGE(err_ <= (tol), "rel rms error ", err_, " > ", (tol)); \
  } while (0)

namespace {

// Restores the SIMD switch and the thread count when a test ends.
struct KernelSettings {
  SimdLevel simd = simd_level();
  int threads = get_num_threads();
  ~KernelSettings() {
    set_simd_level(simd);
    set_num_threads(threads);
  }
};

// The SIMD levels this CPU runs (off and AVX2 everywhere we test; AVX-512 when present).
std::vector<SimdLevel> cpu_levels() {
  std::vector<SimdLevel> v = {SimdLevel::off};
  if (cpu_has_avx2_fma()) v.push_back(SimdLevel::avx2);
  if (cpu_has_avx512())
    v.push_back(SimdLevel::avx512);
  else
    MESSAGE("this CPU has no AVX-512: the AVX-512 GEMM/GEMV kernels are not tested here");
  return v;
}

template <class T>
std::vector<T> random_vec(size_t n, uint64_t seed) {
  Generator g(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = T(2 * g.uniform() - 1);
  return v;
}

template <class T>
double rel_err(const std::vector<T>& x, const std::vector<T>& ref, int64_t M, int64_t N, int64_t ld) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double a = x[size_t(i * ld + j)], b = ref[size_t(i * ld + j)];
      if (!std::isfinite(a) || !std::isfinite(b)) return INFINITY;
      num += (a - b) * (a - b);
      den += b * b;
    }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

enum class Impl { own, blas, dispatch };

// Runs one GEMM with padded leading dims against gemm_ref; returns the relative RMS error.
// With beta == 0, C starts as NaN: the kernel must not read it.
template <class T>
double gemm_error(Impl impl, int64_t M, int64_t N, int64_t K, bool ta, bool tb, T alpha, T beta,
                  bool with_bias = false) {
  const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
  auto A = random_vec<T>(size_t((ta ? K : M) * lda + 1), 1 + M);
  auto B = random_vec<T>(size_t((tb ? N : K) * ldb + 1), 2 + N);
  auto C = random_vec<T>(size_t(M * ldc + 1), 3 + K);
  auto C_ref = C;
  if (beta == T(0)) std::fill(C.begin(), C.end(), T(NAN));
  const auto bias = random_vec<T>(size_t(N), 4 + N);
  kernels::GemmArgs<T> g{C.data(), ldc, A.data(), lda, ta,    B.data(), ldb,
                         tb,       M,   N,        K,   alpha, beta,     with_bias ? bias.data() : nullptr};
  kernels::GemmArgs<T> r = g;
  r.C = C_ref.data();
  kernels::gemm_ref(r);
  if (impl == Impl::own)
    kernels::gemm_own(g);
  else if (impl == Impl::blas)
    kernels::gemm_blas(g);
  else
    kernels::gemm(g);
  // The padding between rows of C must be untouched.
  for (int64_t i = 0; i + 1 < M; ++i)
    for (int64_t j = N; j < ldc; ++j)
      if (beta != T(0) && C[size_t(i * ldc + j)] != C_ref[size_t(i * ldc + j)]) return INFINITY;
  return rel_err(C, C_ref, M, N, ldc);
}

struct Mnk {
  int64_t M, N, K;
};
// Awkward sizes: empty, 1, below and above the 6x16 tile, block edges (KC = 256,
// MC = 144), 1000+, and skinny M (direct path, column split across threads).
const std::vector<Mnk> kSizes = {
    {0, 5, 3},      {5, 0, 3},     {4, 5, 0},    {1, 1, 1},      {7, 7, 7},      {6, 16, 8},     {63, 65, 7},
    {65, 63, 257},  {257, 65, 63}, {1, 257, 65}, {145, 33, 300}, {1000, 17, 33}, {33, 1003, 19}, {12, 32, 513},
    {7, 1, 1001},   {4, 33, 70},   {3, 300, 9},  {2, 129, 1000},  // M <= 4: the unpacked direct path
    {1, 37, 17},    {1, 8, 16},    {2, 65, 47},  {3, 9, 31},      // GEMV: K and N tails of 8/16
    {1, 9, 130},    {1, 3, 80},    {2, 5, 50},   {4, 6, 200},     // GEMV: unrolled steps + leftovers
    {1, 300, 513},  {3, 257, 600},                                // GEMV split across threads
    {169, 97, 513}, {12, 32, 256}, {13, 33, 255}};                // 12x32 AVX-512 tiles, block edges

template <class T>
void check_all_sizes(Impl impl, double tol) {
  for (const Mnk& s : kSizes)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      for (auto [alpha, beta, bias] : {std::tuple<T, T, bool>{1, 0, false},
                                       {T(-0.5), T(1.5), false},
                                       {2, 1, false},
                                       {1, 0, true},
                                       {T(-0.5), T(1.5), true}}) {
        CAPTURE(s.M);
        CAPTURE(s.N);
        CAPTURE(s.K);
        CAPTURE(ta);
        CAPTURE(tb);
        CAPTURE(alpha);
        CAPTURE(beta);
        CAPTURE(bias);
        double e = gemm_error<T>(impl, s.M, s.N, s.K, ta, tb, alpha, beta, bias);
        CHECK(e <= tol);
      }
    }
}

}  // namespace

TEST_CASE("gemm_own matches gemm_ref: f32/f64, SIMD on/off, 1 and 2 threads, all transposes") {
  KernelSettings keep;
  for (int threads : {1, 2}) {
    for (bool simd : {true, false}) {
      CAPTURE(threads);
      CAPTURE(simd);
      set_num_threads(threads);
      set_simd_enabled(simd);
      check_all_sizes<float>(Impl::own, 1e-5);
      check_all_sizes<double>(Impl::own, 1e-13);
    }
  }
}

TEST_CASE("gemm_blas and the dispatcher match gemm_ref") {
  KernelSettings keep;
  check_all_sizes<float>(Impl::dispatch, 1e-5);
  check_all_sizes<double>(Impl::dispatch, 1e-13);
  if (kernels::gemm_blas_available()) {
    check_all_sizes<float>(Impl::blas, 1e-5);
    check_all_sizes<double>(Impl::blas, 1e-13);
  } else {
    CHECK_THROWS_AS(gemm_error<float>(Impl::blas, 2, 2, 2, false, false, 1.0f, 0.0f), Error);
  }
}

TEST_CASE("gemm_own: AVX-512, AVX2 and scalar kernels each match gemm_ref (and each other)") {
  KernelSettings keep;
  for (int threads : {1, 2})
    for (SimdLevel level : cpu_levels()) {
      CAPTURE(threads);
      CAPTURE(simd_level_name(level));
      set_num_threads(threads);
      set_simd_level(level);
      REQUIRE(simd_level() == level);
      check_all_sizes<float>(Impl::own, 1e-5);
    }
  // The levels against each other directly, on a GEMM and a GEMV shape, every transpose.
  const std::vector<SimdLevel> levels = cpu_levels();
  for (Mnk s : {Mnk{77, 95, 300}, Mnk{1, 301, 129}, Mnk{3, 40, 77}})
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      auto A = random_vec<float>(size_t(s.M * s.K), 21), B = random_vec<float>(size_t(s.K * s.N), 22);
      std::vector<std::vector<float>> out;
      for (SimdLevel level : levels) {
        set_simd_level(level);
        std::vector<float> C(size_t(s.M * s.N), NAN);
        kernels::gemm_own({C.data(), s.N, A.data(), ta ? s.M : s.K, ta, B.data(), tb ? s.K : s.N, tb, s.M, s.N, s.K});
        out.push_back(std::move(C));
      }
      CAPTURE(s.M);
      CAPTURE(s.N);
      CAPTURE(s.K);
      CAPTURE(ta);
      CAPTURE(tb);
      for (size_t l = 1; l < out.size(); ++l) CHECK(rel_err(out[l], out[0], s.M, s.N, s.N) <= 1e-5);
    }
}

// The bias rides in each C tile: the same bits as C = bias followed by a GEMM with beta = 1,
// so a linear layer's results do not depend on where its bias is added.
TEST_CASE("gemm with a bias gives the bits of a bias-filled C plus the product") {
  KernelSettings keep;
  for (SimdLevel level : cpu_levels())
    for (Mnk s : {Mnk{77, 95, 300}, Mnk{2048, 96, 64}, Mnk{3, 40, 77}, Mnk{30, 65, 513}}) {
      set_simd_level(level);
      CAPTURE(simd_level_name(level));
      CAPTURE(s.M);
      CAPTURE(s.N);
      CAPTURE(s.K);
      auto A = random_vec<float>(size_t(s.M * s.K), 31), B = random_vec<float>(size_t(s.K * s.N), 32);
      const auto bias = random_vec<float>(size_t(s.N), 33);
      std::vector<float> fused(size_t(s.M * s.N), NAN), filled(fused.size());
      for (int64_t i = 0; i < s.M; ++i) std::copy(bias.begin(), bias.end(), filled.begin() + i * s.N);
      kernels::gemm({fused.data(), s.N, A.data(), s.K, false, B.data(), s.K, true, s.M, s.N, s.K, 1, 0, bias.data()});
      kernels::gemm({filled.data(), s.N, A.data(), s.K, false, B.data(), s.K, true, s.M, s.N, s.K, 1, 1});
      CHECK(std::memcmp(fused.data(), filled.data(), fused.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("sgemv_columns: every SIMD level matches gemm_ref, and column ranges give the bits of one call") {
  KernelSettings keep;
  for (SimdLevel level : cpu_levels())
    for (Mnk s : {Mnk{1, 301, 129}, Mnk{1, 768, 256}, Mnk{2, 37, 24}, Mnk{4, 16, 1}, Mnk{1, 5, 1000}})
      for (bool tb : {true, false}) {
        set_simd_level(level);
        CAPTURE(simd_level_name(level));
        CAPTURE(s.M);
        CAPTURE(s.N);
        CAPTURE(s.K);
        CAPTURE(tb);
        auto A = random_vec<float>(size_t(s.M * s.K), 31), B = random_vec<float>(size_t(s.K * s.N), 32);
        const kernels::GemmArgs<float> g{nullptr,        s.N, A.data(), s.K, false, B.data(),
                                         tb ? s.K : s.N, tb,  s.M,      s.N, s.K};
        std::vector<float> ref(size_t(s.M * s.N), NAN), whole(ref), parts(ref), dispatched(ref);
        kernels::GemmArgs<float> r = g;
        r.C = ref.data();
        kernels::gemm_ref(r);
        r.C = whole.data();
        kernels::sgemv_columns(r, 0, s.N);
        CHECK(rel_err(whole, ref, s.M, s.N, s.N) <= 1e-5);
        r.C = parts.data();  // uneven ranges, as threads of a team take them
        for (int64_t j0 = 0, step = 1; j0 < s.N; j0 += step, step = step * 3 + 1)
          kernels::sgemv_columns(r, j0, std::min(s.N, j0 + step));
        CHECK(std::memcmp(parts.data(), whole.data(), whole.size() * sizeof(float)) == 0);
        r.C = dispatched.data();
        kernels::gemm(r);
        CHECK(std::memcmp(dispatched.data(), whole.data(), whole.size() * sizeof(float)) == 0);
      }
}

TEST_CASE("simd levels: set_simd_enabled(false) forces the scalar path, levels clamp to the CPU") {
  KernelSettings keep;
  set_simd_enabled(false);
  CHECK(simd_level() == SimdLevel::off);
  CHECK_FALSE(simd_enabled());
  set_simd_level(SimdLevel::avx512);
  CHECK(simd_level() == (cpu_has_avx512() ? SimdLevel::avx512 : cpu_has_avx2_fma() ? SimdLevel::avx2 : SimdLevel::off));
  set_simd_level(SimdLevel::avx2);
  CHECK(simd_level() == (cpu_has_avx2_fma() ? SimdLevel::avx2 : SimdLevel::off));
}

TEST_CASE("gemm_own: the same bits for 1 and 2 threads (static split, fixed K order)") {
  KernelSettings keep;
  // M = 301 splits rows across threads; M = 5 (skinny) and M = 1 (GEMV) split the columns.
  for (int64_t M : {301, 5, 1})
    for (SimdLevel simd : cpu_levels()) {
      const int64_t N = 200, K = 300;
      auto A = random_vec<float>(size_t(M * K), 11), B = random_vec<float>(size_t(K * N), 12);
      std::vector<float> C1(size_t(M * N)), C2(size_t(M * N));
      CAPTURE(M);
      CAPTURE(simd_level_name(simd));
      set_simd_level(simd);
      set_num_threads(1);
      kernels::gemm_own({C1.data(), N, A.data(), K, false, B.data(), N, false, M, N, K});
      set_num_threads(2);
      kernels::gemm_own({C2.data(), N, A.data(), K, false, B.data(), N, false, M, N, K});
      CHECK(std::memcmp(C1.data(), C2.data(), C1.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("gemm: invalid sizes and leading dimensions throw") {
  std::vector<float> buf(64);
  float* p = buf.data();
  CHECK_THROWS_WITH_AS(kernels::gemm_own({p, 4, p, 2, false, p, 4, false, 4, 4, 3}),
                       "gemm: lda=2 too small for A of [M, K] with M=4 K=3", Error);
  CHECK_THROWS_WITH_AS(kernels::gemm_own({p, 4, p, 3, false, p, 2, true, 4, 4, 3}),
                       "gemm: ldb=2 too small for B of [N, K] with K=3 N=4", Error);
  CHECK_THROWS_WITH_AS(kernels::gemm_ref({p, 3, p, 3, false, p, 4, false, 4, 4, 3}),
                       "gemm_ref: ldc=3 too small for C of [M, N] with N=4", Error);
  CHECK_THROWS_AS(kernels::gemm({p, 4, p, 3, false, p, 4, false, -1, 4, 3}), Error);
}

// ---- tensor level ------------------------------------------------------------------------

namespace {
// Reference matmul in f64 over explicitly broadcast copies: plain loops.
Tensor matmul_ref(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = a_in.dim() == 1 ? a_in.unsqueeze(0) : a_in;
  Tensor b = b_in.dim() == 1 ? b_in.unsqueeze(1) : b_in;
  Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ab, bb, "matmul_ref");
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Shape as = batch, bs = batch, os = batch;
  as.insert(as.end(), {M, K});
  bs.insert(bs.end(), {K, N});
  os.insert(os.end(), {M, N});
  std::vector<double> av = a.expand(as).to_vector<double>(), bv = b.expand(bs).to_vector<double>();
  std::vector<double> ov(size_t(shape_numel(os)));
  const int64_t nb = shape_numel(batch);
  for (int64_t q = 0; q < nb; ++q)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += av[size_t((q * M + i) * K + k)] * bv[size_t((q * K + k) * N + j)];
        ov[size_t((q * M + i) * N + j)] = s;
      }
  Shape out = batch;
  if (a_in.dim() > 1) out.push_back(M);
  if (b_in.dim() > 1) out.push_back(N);
  return from_vector(ov).reshape(out);
}

Tensor rnd(const Shape& s, DType dt = DType::f32, uint64_t seed = 7) {
  Generator g(seed);
  return randn(s, g, dt);
}

void check_matmul(const Tensor& a, const Tensor& b, double tol) {
  CAPTURE(shape_str(a.shape()));
  CAPTURE(shape_str(b.shape()));
  Tensor y = core::matmul(a, b);
  CHECK(y.dtype() == a.dtype());
  CHECK(y.is_contiguous());
  CHECK_REL(y.to(DType::f64), matmul_ref(a, b), tol);
}
}  // namespace

TEST_CASE("matmul: 2-D, batched with broadcast batch dims, 1-D operands (NumPy rules)") {
  KernelSettings keep;
  for (DType dt : {DType::f32, DType::f64}) {
    const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
    check_matmul(rnd({7, 5}, dt, 1), rnd({5, 9}, dt, 2), tol);
    check_matmul(rnd({2, 1, 7, 5}, dt, 1), rnd({3, 5, 4}, dt, 2), tol);  // -> [2, 3, 7, 4]
    check_matmul(rnd({4, 6, 5}, dt, 1), rnd({5, 3}, dt, 2), tol);        // batch folded into M
    check_matmul(rnd({5, 3}, dt, 1), rnd({4, 3, 6}, dt, 2), tol);        // lhs broadcast
    check_matmul(rnd({5}, dt, 1), rnd({5, 3}, dt, 2), tol);              // vector @ matrix
    check_matmul(rnd({4, 5}, dt, 1), rnd({5}, dt, 2), tol);              // matrix @ vector
    check_matmul(rnd({5}, dt, 1), rnd({5}, dt, 2), tol);                 // dot -> 0-d
    check_matmul(rnd({2, 4, 5}, dt, 1), rnd({5}, dt, 2), tol);           // batched @ vector
    check_matmul(rnd({5}, dt, 1), rnd({2, 5, 3}, dt, 2), tol);           // vector @ batched
  }
  CHECK(core::matmul(rnd({5}), rnd({5})).dim() == 0);
  CHECK(core::matmul(rnd({2, 1, 7, 5}), rnd({3, 5, 4})).shape() == Shape{2, 3, 7, 4});
  // Many small products run in parallel over the batch; large ones one after another.
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    check_matmul(rnd({64, 8, 9}), rnd({64, 9, 10}), 1e-5);
    check_matmul(rnd({2, 130, 70}), rnd({2, 70, 129}), 1e-5);
    check_matmul(rnd({3, 100, 64}), rnd({64, 1003}), 1e-5);  // folded, 1000+ columns
  }
}

TEST_CASE("matmul: strided inputs (transposed views as flags, others copied)") {
  Tensor a = rnd({3, 6, 5}, DType::f32, 3), b = rnd({3, 5, 4}, DType::f32, 4);
  check_matmul(testing::non_contiguous(a), testing::non_contiguous(b), 1e-5);    // both transposed
  check_matmul(rnd({3, 5, 6}).transpose(-1, -2), b, 1e-5);                       // a^T view
  check_matmul(a, rnd({3, 4, 5}).transpose(1, 2), 1e-5);                         // b^T view
  check_matmul(rnd({6, 12}).slice(1, 0, 12, 2), rnd({6, 4}), 1e-5);              // column step 2: copied
  check_matmul(rnd({10, 5}).slice(0, 1, 8), rnd({5, 4}).narrow(1, 1, 2), 1e-5);  // row/col windows
  check_matmul(rnd({1, 5}).expand({6, 5}), rnd({5, 4}), 1e-5);                   // stride-0 rows
  check_matmul(rnd({2, 3, 6, 5}).select(1, 2), b.select(0, 1), 1e-5);            // batch strides
  check_matmul(rnd({6, 4, 5}).permute({1, 0, 2}), rnd({4, 5, 3}), 1e-5);         // batch stride 5
  check_matmul(testing::non_contiguous(rnd({9})), rnd({9, 3}), 1e-5);            // strided vector
  check_matmul(rnd({3, 9}).select(1, 1), rnd({2, 3}).t(), 1e-5);                 // stride-9 vector @ matrix^T
}

TEST_CASE("matmul: empty operands") {
  CHECK(core::matmul(rnd({0, 3}), rnd({3, 4})).shape() == Shape{0, 4});
  CHECK(core::matmul(rnd({2, 0, 3}), rnd({3, 4})).shape() == Shape{2, 0, 4});
  Tensor z = core::matmul(rnd({2, 0}), rnd({0, 3}));
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.to_vector<double>() == std::vector<double>(6, 0.0));
  Tensor l = core::linear(rnd({2, 0}), rnd({3, 0}), full({3}, 1.5));
  CHECK(l.to_vector<double>() == std::vector<double>(6, 1.5));
}

TEST_CASE("matmul: errors name the op, the shapes and the dtypes") {
  CHECK_THROWS_WITH_AS(core::matmul(rnd({4, 64, 128}), rnd({256, 64})),
                       "matmul: shape mismatch, lhs [4, 64, 128] vs rhs [256, 64]", Error);
  CHECK_THROWS_WITH_AS(core::matmul(rnd({3}), rnd({4})), "matmul: shape mismatch, lhs [3] vs rhs [4]", Error);
  CHECK_THROWS_WITH_AS(core::matmul(rnd({2, 3, 4}), rnd({5, 4, 2})),
                       "matmul: batch dims do not broadcast, lhs [2, 3, 4] vs rhs [5, 4, 2]", Error);
  CHECK_THROWS_WITH_AS(core::matmul(rnd({2, 3}), rnd({3, 2}, DType::f64)), "matmul: dtype mismatch, lhs f32 vs rhs f64",
                       Error);
  CHECK_THROWS_WITH_AS(core::matmul(zeros({2, 3}, DType::i64), zeros({3, 2}, DType::i64)),
                       "matmul: expected floating dtypes (f32 or f64), got lhs i64 vs rhs i64", Error);
  CHECK_THROWS_WITH_AS(core::matmul(scalar_tensor(1.0), rnd({3})),
                       "matmul: both operands need at least 1 dim, got lhs [] vs rhs [3]", Error);
}

TEST_CASE("linear: x W^T + b over leading dims, with and without bias") {
  for (DType dt : {DType::f32, DType::f64}) {
    const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
    Tensor x = rnd({2, 3, 7}, dt, 1), w = rnd({5, 7}, dt, 2), b = rnd({5}, dt, 3);
    Tensor ref = matmul_ref(x, w.t());
    CHECK_REL(core::linear(x, w).to(DType::f64), ref, tol);
    // With bias: ref + b, built from the host vectors.
    std::vector<double> rv = ref.to_vector<double>(), bv = b.to_vector<double>();
    for (size_t i = 0; i < rv.size(); ++i) rv[i] += bv[i % 5];
    Tensor ref_b = from_vector(rv, {2, 3, 5});
    CHECK_REL(core::linear(x, w, b).to(DType::f64), ref_b, tol);
    CHECK_REL(core::linear(testing::non_contiguous(x), testing::non_contiguous(w), b).to(DType::f64), ref_b, tol);
    // 1-D x.
    Tensor x1 = x.select(0, 1).select(0, 2);
    CHECK_REL(core::linear(x1, w, b).to(DType::f64), ref_b.select(0, 1).select(0, 2), tol);
    CHECK(core::linear(x1, w, b).shape() == Shape{5});
  }
  CHECK_THROWS_WITH_AS(core::linear(rnd({4, 8}), rnd({16, 9})),
                       "linear: shape mismatch, x [4, 8] vs weight [16, 9] (expected x [..., 9])", Error);
  CHECK_THROWS_WITH_AS(core::linear(rnd({4, 8}), rnd({16, 8}), rnd({15})),
                       "linear: bias must be [16] for weight [16, 8], got [15]", Error);
  CHECK_THROWS_WITH_AS(core::linear(rnd({4, 8}), rnd({8})), "linear: weight must be 2-D [out, in], got [8]", Error);
  CHECK_THROWS_WITH_AS(core::linear(rnd({4, 8}), rnd({16, 8}, DType::f64)),
                       "linear: dtype mismatch, x f32 vs weight f64", Error);
}
