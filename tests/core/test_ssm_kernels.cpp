// The dense state-space kernels (core/kernels/ssm_kernels.h) in f64: the solver and the matrix
// exponential against identities, bilinear and ZOH against their defining equations and the
// diagonal closed form, Krylov powering against the Vandermonde sum, the Hermitian eigensolver,
// the NPLR forms of HiPPO-LegS and FouT against the dense matrices, HiPPO-LegT's window
// reconstruction.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

#include "core/error.h"
#include "core/kernels/ssm_kernels.h"

namespace tz::testing {
namespace {
using kernels::cplx;
using Mat = std::vector<double>;

Mat random_vec(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d;
  Mat v(static_cast<size_t>(n));
  for (double& x : v) x = d(rng);
  return v;
}
double max_abs(const Mat& a, const Mat& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}
Mat matmul(const Mat& a, const Mat& b, int64_t n, int64_t m, int64_t k) {  // [n, k] @ [k, m]
  Mat c(size_t(n * m), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t l = 0; l < k; ++l)
      for (int64_t j = 0; j < m; ++j) c[size_t(i * m + j)] += a[size_t(i * k + l)] * b[size_t(l * m + j)];
  return c;
}
}  // namespace

TEST_CASE("ssm_kernels: solve_dense and expm_dense satisfy their identities, singular matrices throw") {
  const int64_t N = 9;
  Mat M = random_vec(N * N, 1), R = random_vec(N * 3, 2), X(size_t(N * 3));
  kernels::solve_dense(X.data(), M.data(), R.data(), N, 3);
  CHECK(max_abs(matmul(M, X, N, 3, N), R) <= 1e-12);
  // e^{M} e^{-M} = I, and e^{θ[[0,-1],[1,0]]} is the rotation by θ
  Mat neg(M), E(size_t(N * N)), F(size_t(N * N)), I(size_t(N * N), 0.0);
  for (double& v : neg) v = -v;
  for (int64_t i = 0; i < N; ++i) I[size_t(i * N + i)] = 1;
  kernels::expm_dense(E.data(), M.data(), N);
  kernels::expm_dense(F.data(), neg.data(), N);
  CHECK(max_abs(matmul(E, F, N, N, N), I) <= 1e-10);
  Mat rot{0, -3.0, 3.0, 0}, er(4);
  kernels::expm_dense(er.data(), rot.data(), 2);
  CHECK(max_abs(er, {std::cos(3.0), -std::sin(3.0), std::sin(3.0), std::cos(3.0)}) <= 1e-14);
  Mat sing{1, 2, 2, 4};
  CHECK_THROWS_AS(kernels::solve_dense(X.data(), sing.data(), R.data(), 2, 1), tz::Error);
}

TEST_CASE("ssm_kernels: bilinear and ZOH match their definitions, Krylov == Vandermonde on a diagonal A") {
  const int64_t N = 6, L = 40;
  kernels::DenseSsm s = kernels::hippo_legs(N);
  const double dt = 0.07;
  Mat Ab(size_t(N * N)), Bb(static_cast<size_t>(N));
  kernels::discretise_bilinear(Ab.data(), Bb.data(), s.A.data(), s.B.data(), N, dt);
  // (I - Δ/2 A) Ā = I + Δ/2 A and (I - Δ/2 A) B̄ = Δ B
  Mat lhs(size_t(N * N)), rhs(size_t(N * N)), db(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    db[size_t(i)] = dt * s.B[size_t(i)];
    for (int64_t j = 0; j < N; ++j) {
      lhs[size_t(i * N + j)] = (i == j) - dt / 2 * s.A[size_t(i * N + j)];
      rhs[size_t(i * N + j)] = (i == j) + dt / 2 * s.A[size_t(i * N + j)];
    }
  }
  CHECK(max_abs(matmul(lhs, Ab, N, N, N), rhs) <= 1e-13);
  CHECK(max_abs(matmul(lhs, Bb, N, 1, N), db) <= 1e-13);
  // a diagonal A: ZOH is λ̄ = e^{Δλ}, B̄ = (e^{Δλ} - 1)/λ B, and Krylov is the Vandermonde sum
  Mat lam{-0.3, -1.0, -2.5, -0.05, -4.0, -0.7}, A(size_t(N * N), 0.0), B = random_vec(N, 3), C = random_vec(N, 4);
  for (int64_t i = 0; i < N; ++i) A[size_t(i * N + i)] = lam[size_t(i)];
  kernels::discretise_zoh(Ab.data(), Bb.data(), A.data(), B.data(), N, dt);
  Mat K(static_cast<size_t>(L)), V(size_t(L), 0.0);
  kernels::krylov_kernel(K.data(), Ab.data(), Bb.data(), C.data(), N, L);
  double zoh = 0;
  for (int64_t i = 0; i < N; ++i) {
    const double e = std::exp(dt * lam[size_t(i)]), bb = (e - 1) / lam[size_t(i)] * B[size_t(i)];
    zoh = std::max({zoh, std::abs(Ab[size_t(i * N + i)] - e), std::abs(Bb[size_t(i)] - bb)});
    for (int64_t l = 0; l < L; ++l) V[size_t(l)] += C[size_t(i)] * bb * std::pow(e, double(l));
  }
  CHECK(zoh <= 1e-14);
  CHECK(max_abs(K, V) <= 1e-12);
  // ZOH and bilinear agree to O(Δ³) per step on a dense A
  Mat Ab2(size_t(N * N)), Bb2(static_cast<size_t>(N));
  kernels::discretise_zoh(Ab2.data(), Bb2.data(), s.A.data(), s.B.data(), N, 1e-3);
  kernels::discretise_bilinear(Ab.data(), Bb.data(), s.A.data(), s.B.data(), N, 1e-3);
  CHECK(max_abs(Ab, Ab2) <= 1e-6);
  CHECK(max_abs(Ab, Ab2) > 0);
}

TEST_CASE("ssm_kernels: Hermitian eigensolver and the NPLR forms of HiPPO-LegS and FouT") {
  const int64_t N = 7;
  Mat re = random_vec(N * N, 5), im = random_vec(N * N, 6);
  std::vector<cplx> H(size_t(N * N)), V(size_t(N * N));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const cplx z(re[size_t(i * N + j)] + re[size_t(j * N + i)],
                   i == j ? 0.0 : im[size_t(i * N + j)] - im[size_t(j * N + i)]);
      H[size_t(i * N + j)] = z;
    }
  Mat w(static_cast<size_t>(N));
  kernels::hermitian_eigen(w.data(), V.data(), H.data(), N);
  double resid = 0, orth = 0;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t k = 0; k < N; ++k) {
      cplx hv = 0, vv = 0;
      for (int64_t j = 0; j < N; ++j) {
        hv += H[size_t(i * N + j)] * V[size_t(j * N + k)];
        vv += std::conj(V[size_t(j * N + i)]) * V[size_t(j * N + k)];
      }
      resid = std::max(resid, std::abs(hv - w[size_t(k)] * V[size_t(i * N + k)]));
      orth = std::max(orth, std::abs(vv - double(i == k)));
    }
  CHECK(resid <= 1e-12);
  CHECK(orth <= 1e-12);
  for (int64_t k = 1; k < N; ++k) CHECK(w[size_t(k - 1)] <= w[size_t(k)]);

  for (const char* measure : {"legs", "fout"}) {
    for (int64_t n : {8, 16, 17}) {
      CAPTURE(measure);
      CAPTURE(n);
      const bool legs = std::string(measure) == "legs";
      kernels::DenseSsm s = legs ? kernels::hippo_legs(n) : kernels::hippo_fout(n);
      kernels::Nplr r = kernels::nplr(s, legs ? kernels::legs_low_rank(n) : kernels::fout_low_rank(n));
      double err = 0;  // V (Λ - P̃P̃*) V* and V B̃ against A and B
      for (int64_t i = 0; i < n; ++i) {
        cplx b = 0;
        for (int64_t j = 0; j < n; ++j) {
          cplx a = 0;
          for (int64_t m = 0; m < n; ++m) {
            cplx inner = 0;
            for (int64_t q = 0; q < n; ++q) {
              const cplx core = (m == q ? r.lambda[size_t(m)] : 0.0) - r.P[size_t(m)] * std::conj(r.P[size_t(q)]);
              inner += core * std::conj(r.V[size_t(j * n + q)]);
            }
            a += r.V[size_t(i * n + m)] * inner;
          }
          err = std::max(err, std::abs(a - s.A[size_t(i * n + j)]));
          b += r.V[size_t(i * n + j)] * r.B[size_t(j)];
        }
        err = std::max(err, std::abs(b - s.B[size_t(i)]));
      }
      CHECK(err <= 1e-10 * double(n));
      for (const cplx& l : r.lambda) CHECK(l.real() == doctest::Approx(legs ? -0.5 : 0.0));
    }
  }
  kernels::DenseSsm legt = kernels::hippo_legt(6);
  CHECK_THROWS_AS(kernels::nplr(legt, kernels::legs_low_rank(6)), tz::Error);
}

TEST_CASE("ssm_kernels: HiPPO-LegT's state reconstructs the last window, better as N grows") {
  // u(t) = sin 3t + cos(7t)/2 on t ∈ [0, 2], the memory run by ZOH with a small step; at t = 2
  // the window [1, 2] is read back as u(2 - r) ≈ Σ_n c_n P_n(2r - 1), r ∈ [0, 1].
  auto u = [](double t) { return std::sin(3 * t) + 0.5 * std::cos(7 * t); };
  const int64_t steps = 4000;
  const double dt = 2.0 / double(steps);
  double prev = 1e9;
  for (int64_t N : {2, 4, 6, 8}) {
    kernels::DenseSsm s = kernels::hippo_legt(N);
    Mat Ab(size_t(N * N)), Bb(static_cast<size_t>(N)), c(size_t(N), 0.0), p(static_cast<size_t>(N));
    kernels::discretise_bilinear(Ab.data(), Bb.data(), s.A.data(), s.B.data(), N, dt);
    for (int64_t k = 1; k <= steps; ++k) {
      Mat next = matmul(Ab, c, N, 1, N);
      for (int64_t i = 0; i < N; ++i) next[size_t(i)] += Bb[size_t(i)] * u(double(k) * dt);
      c = next;
    }
    double se = 0;
    const int64_t M = 200;
    for (int64_t j = 0; j < M; ++j) {
      const double r = (double(j) + 0.5) / double(M);
      kernels::legendre(p.data(), 2 * r - 1, N);
      double rec = 0;
      for (int64_t i = 0; i < N; ++i) rec += c[size_t(i)] * p[size_t(i)];
      se += (rec - u(2 - r)) * (rec - u(2 - r)) / double(M);
    }
    const double rms = std::sqrt(se);
    MESSAGE("LegT N ", N, ": window reconstruction rms ", rms);
    CHECK(rms < prev);
    prev = rms;
  }
  CHECK(prev <= 5e-3);
  Mat p(4);
  kernels::legendre(p.data(), 0.3, 4);
  CHECK(p[2] == doctest::Approx((3 * 0.09 - 1) / 2));
  CHECK(p[3] == doctest::Approx((5 * 0.027 - 3 * 0.3) / 2));
}

}  // namespace tz::testing
