// Dense state-space kernels (math in ssm_kernels.h). Plain loops: N is a state size (<= a few
// hundred), and these run once per forward or at initialisation.
#include "core/kernels/ssm_kernels.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace tz::kernels {
namespace {
using Mat = std::vector<double>;

Mat matmul(const Mat& a, const Mat& b, int64_t N) {
  Mat c(size_t(N * N), 0.0);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t k = 0; k < N; ++k) {
      const double aik = a[size_t(i * N + k)];
      for (int64_t j = 0; j < N; ++j) c[size_t(i * N + j)] += aik * b[size_t(k * N + j)];
    }
  return c;
}
}  // namespace

DenseSsm hippo_legs(int64_t N) {
  DenseSsm s{.N = N, .A = Mat(size_t(N * N), 0.0), .B = Mat(static_cast<size_t>(N))};
  for (int64_t n = 0; n < N; ++n) {
    s.B[size_t(n)] = std::sqrt(2.0 * double(n) + 1);
    for (int64_t k = 0; k <= n; ++k)
      s.A[size_t(n * N + k)] =
          n > k ? -std::sqrt(2.0 * double(n) + 1) * std::sqrt(2.0 * double(k) + 1) : -double(n + 1);
  }
  return s;
}

DenseSsm hippo_legt(int64_t N) {
  DenseSsm s{.N = N, .A = Mat(size_t(N * N)), .B = Mat(static_cast<size_t>(N))};
  for (int64_t n = 0; n < N; ++n) {
    const double w = 2.0 * double(n) + 1;
    s.B[size_t(n)] = n % 2 == 0 ? w : -w;
    for (int64_t k = 0; k < N; ++k) s.A[size_t(n * N + k)] = n < k ? -w : ((n - k + 1) % 2 == 0 ? w : -w);
  }
  return s;
}

DenseSsm hippo_fout(int64_t N) {
  DenseSsm s{.N = N, .A = Mat(size_t(N * N), 0.0), .B = Mat(size_t(N), 0.0)};
  std::vector<double> e(size_t(N), 0.0);  // q(0): 1, then √2 for the cosines, 0 for the sines
  for (int64_t n = 0; n < N; ++n) e[size_t(n)] = n == 0 ? 1.0 : (n % 2 == 1 ? std::sqrt(2.0) : 0.0);
  for (int64_t k = 1; 2 * k < N; ++k) {
    const double w = 2 * std::numbers::pi * double(k);
    s.A[size_t((2 * k - 1) * N + 2 * k)] = -w;
    s.A[size_t(2 * k * N + 2 * k - 1)] = w;
  }
  for (int64_t n = 0; n < N; ++n) {
    s.B[size_t(n)] = 2 * e[size_t(n)];
    for (int64_t k = 0; k < N; ++k) s.A[size_t(n * N + k)] -= 2 * e[size_t(n)] * e[size_t(k)];
  }
  return s;
}

void solve_dense(double* X, const double* M, const double* R, int64_t N, int64_t R_cols) {
  const int64_t W = N + R_cols;  // the augmented matrix [M | R]
  Mat a(size_t(N * W));
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t j = 0; j < N; ++j) a[size_t(i * W + j)] = M[i * N + j];
    for (int64_t j = 0; j < R_cols; ++j) a[size_t(i * W + N + j)] = R[i * R_cols + j];
  }
  for (int64_t c = 0; c < N; ++c) {
    int64_t piv = c;
    for (int64_t i = c + 1; i < N; ++i)
      if (std::abs(a[size_t(i * W + c)]) > std::abs(a[size_t(piv * W + c)])) piv = i;
    TZ_CHECK(a[size_t(piv * W + c)] != 0.0, "solve_dense: the ", N, " x ", N, " matrix is singular (column ", c, ")");
    if (piv != c)
      for (int64_t j = 0; j < W; ++j) std::swap(a[size_t(c * W + j)], a[size_t(piv * W + j)]);
    for (int64_t i = c + 1; i < N; ++i) {
      const double f = a[size_t(i * W + c)] / a[size_t(c * W + c)];
      if (f != 0.0)
        for (int64_t j = c; j < W; ++j) a[size_t(i * W + j)] -= f * a[size_t(c * W + j)];
    }
  }
  for (int64_t j = 0; j < R_cols; ++j)  // back substitution, column by column
    for (int64_t i = N - 1; i >= 0; --i) {
      double s = a[size_t(i * W + N + j)];
      for (int64_t k = i + 1; k < N; ++k) s -= a[size_t(i * W + k)] * X[k * R_cols + j];
      X[i * R_cols + j] = s / a[size_t(i * W + i)];
    }
}

void expm_dense(double* E, const double* M, int64_t N) {
  double norm = 0;  // the 1-norm: the largest column sum
  for (int64_t j = 0; j < N; ++j) {
    double s = 0;
    for (int64_t i = 0; i < N; ++i) s += std::abs(M[i * N + j]);
    norm = std::max(norm, s);
  }
  // scale so that ||M / 2^s|| <= 1/2: 20 Taylor terms are then below 1e-25
  const int s = norm > 0.5 ? int(std::ceil(std::log2(norm / 0.5))) : 0;
  const double scale = std::ldexp(1.0, -s);
  Mat x(size_t(N * N)), term(size_t(N * N), 0.0), e(size_t(N * N), 0.0);
  for (int64_t i = 0; i < N * N; ++i) x[size_t(i)] = M[i] * scale;
  for (int64_t i = 0; i < N; ++i) term[size_t(i * N + i)] = e[size_t(i * N + i)] = 1.0;
  for (int k = 1; k <= 20; ++k) {
    term = matmul(term, x, N);
    for (double& v : term) v /= double(k);
    for (int64_t i = 0; i < N * N; ++i) e[size_t(i)] += term[size_t(i)];
  }
  for (int i = 0; i < s; ++i) e = matmul(e, e, N);
  std::copy(e.begin(), e.end(), E);
}

void discretise_bilinear(double* Ab, double* Bb, const double* A, const double* B, int64_t N, double dt) {
  Mat lhs(size_t(N * N)), rhs(size_t(N * (N + 1)));  // (I - Δ/2 A) [Ā | B̄] = [(I + Δ/2 A) | Δ B]
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      const double a = dt / 2 * A[i * N + j], id = i == j ? 1.0 : 0.0;
      lhs[size_t(i * N + j)] = id - a;
      rhs[size_t(i * (N + 1) + j)] = id + a;
    }
    rhs[size_t(i * (N + 1) + N)] = dt * B[i];
  }
  Mat x(size_t(N * (N + 1)));
  solve_dense(x.data(), lhs.data(), rhs.data(), N, N + 1);
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t j = 0; j < N; ++j) Ab[i * N + j] = x[size_t(i * (N + 1) + j)];
    Bb[i] = x[size_t(i * (N + 1) + N)];
  }
}

void discretise_zoh(double* Ab, double* Bb, const double* A, const double* B, int64_t N, double dt) {
  // e^{[[A, B], [0, 0]] Δ} = [[e^{AΔ}, ∫_0^Δ e^{As} ds B], [0, 1]]
  const int64_t M = N + 1;
  Mat m(size_t(M * M), 0.0), e(size_t(M * M));
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t j = 0; j < N; ++j) m[size_t(i * M + j)] = dt * A[i * N + j];
    m[size_t(i * M + N)] = dt * B[i];
  }
  expm_dense(e.data(), m.data(), M);
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t j = 0; j < N; ++j) Ab[i * N + j] = e[size_t(i * M + j)];
    Bb[i] = e[size_t(i * M + N)];
  }
}

void krylov_vectors(double* V, const double* Ab, const double* Bb, int64_t N, int64_t L) {
  for (int64_t l = 0; l < L; ++l) {
    double* v = V + l * N;
    if (l == 0) {
      std::copy(Bb, Bb + N, v);
      continue;
    }
    const double* prev = v - N;
    for (int64_t i = 0; i < N; ++i) {
      double s = 0;
      for (int64_t j = 0; j < N; ++j) s += Ab[i * N + j] * prev[j];
      v[i] = s;
    }
  }
}

void krylov_kernel(double* K, const double* Ab, const double* Bb, const double* C, int64_t N, int64_t L) {
  Mat v(size_t(L * N));
  krylov_vectors(v.data(), Ab, Bb, N, L);
  for (int64_t l = 0; l < L; ++l) {
    double s = 0;
    for (int64_t i = 0; i < N; ++i) s += C[i] * v[size_t(l * N + i)];
    K[l] = s;
  }
}

void hermitian_eigen(double* w, cplx* V, const cplx* H, int64_t N) {
  std::vector<cplx> a(H, H + N * N);
  for (int64_t i = 0; i < N * N; ++i) V[i] = 0;
  for (int64_t i = 0; i < N; ++i) V[i * N + i] = 1;
  double total = 0;
  for (const cplx& z : a) total += std::norm(z);
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < N; ++p)
      for (int64_t q = p + 1; q < N; ++q) off += std::norm(a[size_t(p * N + q)]);
    if (off <= 1e-30 * total) break;
    for (int64_t p = 0; p < N; ++p)
      for (int64_t q = p + 1; q < N; ++q) {
        const cplx apq = a[size_t(p * N + q)];
        if (std::abs(apq) == 0.0) continue;
        // 1. a phase on row and column q makes a_pq real and positive
        const cplx ph = std::polar(1.0, -std::arg(apq));
        for (int64_t r = 0; r < N; ++r) {
          a[size_t(r * N + q)] *= ph;
          V[r * N + q] *= ph;
        }
        for (int64_t r = 0; r < N; ++r) a[size_t(q * N + r)] *= std::conj(ph);
        // 2. a real rotation of columns (p, q) and rows (p, q) zeroes it: tan 2θ = 2 a_pq / (a_qq - a_pp)
        const double b = a[size_t(p * N + q)].real(), app = a[size_t(p * N + p)].real(),
                     aqq = a[size_t(q * N + q)].real();
        const double th = 0.5 * std::atan2(2 * b, aqq - app), c = std::cos(th), s = std::sin(th);
        for (int64_t r = 0; r < N; ++r) {
          const cplx x = a[size_t(r * N + p)], y = a[size_t(r * N + q)];
          a[size_t(r * N + p)] = c * x - s * y;
          a[size_t(r * N + q)] = s * x + c * y;
          const cplx vx = V[r * N + p], vy = V[r * N + q];
          V[r * N + p] = c * vx - s * vy;
          V[r * N + q] = s * vx + c * vy;
        }
        for (int64_t r = 0; r < N; ++r) {
          const cplx x = a[size_t(p * N + r)], y = a[size_t(q * N + r)];
          a[size_t(p * N + r)] = c * x - s * y;
          a[size_t(q * N + r)] = s * x + c * y;
        }
      }
  }
  // sort ascending, columns of V with their eigenvalues
  std::vector<int64_t> order(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) order[size_t(i)] = i;
  std::sort(order.begin(), order.end(),
            [&](int64_t i, int64_t j) { return a[size_t(i * N + i)].real() < a[size_t(j * N + j)].real(); });
  std::vector<cplx> v(V, V + N * N);
  for (int64_t k = 0; k < N; ++k) {
    const int64_t src = order[size_t(k)];
    w[k] = a[size_t(src * N + src)].real();
    for (int64_t r = 0; r < N; ++r) V[r * N + k] = v[size_t(r * N + src)];
  }
}

std::vector<double> legs_low_rank(int64_t N) {
  std::vector<double> p(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) p[size_t(n)] = std::sqrt(double(n) + 0.5);
  return p;
}

std::vector<double> fout_low_rank(int64_t N) {
  std::vector<double> p(size_t(N), 0.0);
  for (int64_t n = 0; n < N; ++n) p[size_t(n)] = n == 0 ? std::sqrt(2.0) : (n % 2 == 1 ? 2.0 : 0.0);
  return p;
}

Nplr nplr(const DenseSsm& s, const std::vector<double>& P) {
  const int64_t N = s.N;
  TZ_CHECK(int64_t(P.size()) == N, "nplr: P must have N = ", N, " entries, got ", P.size());
  Mat S(size_t(N * N));  // the normal part A + P Pᵀ = d I + (skew)
  double d = 0;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) S[size_t(i * N + j)] = s.A[size_t(i * N + j)] + P[size_t(i)] * P[size_t(j)];
  for (int64_t i = 0; i < N; ++i) d += S[size_t(i * N + i)] / double(N);
  double asym = 0;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j)
      asym = std::max(asym, std::abs(S[size_t(i * N + j)] + S[size_t(j * N + i)] - (i == j ? 2 * d : 0.0)));
  TZ_CHECK(asym <= 1e-9, "nplr: A + P Pᵀ must be a multiple of I plus a skew matrix (off by ", asym, ")");
  // the skew part K = S - d I: K = V (iω) V*, found as the Hermitian -iK = V ω V*
  std::vector<cplx> H(size_t(N * N));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) H[size_t(i * N + j)] = cplx(0, -1) * (S[size_t(i * N + j)] - (i == j ? d : 0.0));
  Nplr r{.N = N,
         .lambda = std::vector<cplx>(static_cast<size_t>(N)),
         .P = std::vector<cplx>(static_cast<size_t>(N)),
         .B = std::vector<cplx>(static_cast<size_t>(N)),
         .V = std::vector<cplx>(size_t(N * N))};
  std::vector<double> w(static_cast<size_t>(N));
  hermitian_eigen(w.data(), r.V.data(), H.data(), N);
  for (int64_t n = 0; n < N; ++n) {
    r.lambda[size_t(n)] = cplx(d, w[size_t(n)]);
    cplx p = 0, b = 0;  // V* P, V* B
    for (int64_t i = 0; i < N; ++i) {
      p += std::conj(r.V[size_t(i * N + n)]) * P[size_t(i)];
      b += std::conj(r.V[size_t(i * N + n)]) * s.B[size_t(i)];
    }
    r.P[size_t(n)] = p;
    r.B[size_t(n)] = b;
  }
  return r;
}

void legs_memory_steps(double* Ab, double* Bb, int64_t N, int64_t T) {
  const DenseSsm s = hippo_legs(N);
  for (int64_t k = 1; k <= T; ++k)  // the bilinear step of c' = (1/t)(A c + B u) at t = k, step 1
    discretise_bilinear(Ab + (k - 1) * N * N, Bb + (k - 1) * N, s.A.data(), s.B.data(), N, 1.0 / double(k));
}

void legendre(double* p, double x, int64_t N) {
  if (N > 0) p[0] = 1;
  if (N > 1) p[1] = x;
  for (int64_t n = 2; n < N; ++n)  // n P_n = (2n - 1) x P_{n-1} - (n - 1) P_{n-2}
    p[n] = ((2.0 * double(n) - 1) * x * p[n - 1] - (double(n) - 1) * p[n - 2]) / double(n);
}

}  // namespace tz::kernels
