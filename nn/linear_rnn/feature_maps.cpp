// Feature maps for kernelised attention: see feature_maps.h.
#include "nn/linear_rnn/feature_maps.h"

#include <cmath>
#include <numeric>

#include "core/creation.h"
#include "core/kernels/fft.h"

namespace tz::nn {

namespace {
// Gram-Schmidt of the rows of g [n][d] in place (n <= d); returns false on a degenerate row.
bool orthonormalise_rows(std::vector<std::vector<double>>& g) {
  for (size_t i = 0; i < g.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      double dot = 0;
      for (size_t c = 0; c < g[i].size(); ++c) dot += g[i][c] * g[j][c];
      for (size_t c = 0; c < g[i].size(); ++c) g[i][c] -= dot * g[j][c];
    }
    double n = 0;
    for (double v : g[i]) n += v * v;
    n = std::sqrt(n);
    if (n < 1e-12) return false;
    for (double& v : g[i]) v /= n;
  }
  return true;
}

std::vector<double> orthogonal_draw(int64_t m, int64_t d, Generator& gen) {
  std::vector<double> w(size_t(m * d));
  for (int64_t r0 = 0; r0 < m; r0 += d) {
    const int64_t rows = std::min(d, m - r0);
    std::vector<std::vector<double>> g;
    do {  // a Gaussian block is degenerate with probability 0; redraw if it ever is
      g.assign(size_t(rows), std::vector<double>(size_t(d)));
      for (auto& row : g)
        for (double& v : row) v = gen.normal();
    } while (!orthonormalise_rows(g));
    for (int64_t r = 0; r < rows; ++r) {
      double len = 0;  // chi_d: the length of an independent Gaussian d-vector
      for (int64_t c = 0; c < d; ++c) len += std::pow(gen.normal(), 2);
      len = std::sqrt(len);
      for (int64_t c = 0; c < d; ++c) w[size_t((r0 + r) * d + c)] = len * g[size_t(r)][size_t(c)];
    }
  }
  return w;
}
}  // namespace

Tensor orthogonal_random_features(int64_t m, int64_t d, Generator& gen, DType dtype) {
  TZ_CHECK(m >= 1 && d >= 1, "orthogonal_random_features: needs m, d >= 1, got m ", m, ", d ", d);
  return from_vector(orthogonal_draw(m, d, gen), {m, d}).to(dtype);
}

void redraw_orthogonal_features(const Tensor& w, Generator& gen) {
  TZ_CHECK(w.dim() == 2 && w.is_contiguous(), "redraw_orthogonal_features: needs a contiguous [m, d], got ", w.shape());
  std::vector<double> v = orthogonal_draw(w.size(0), w.size(1), gen);
  for (size_t i = 0; i < v.size(); ++i) {
    if (w.dtype() == DType::f64)
      w.data<double>()[i] = v[i];
    else
      w.data<float>()[i] = float(v[i]);
  }
}

namespace {
// P(a, x), the regularised lower incomplete gamma function: its series for x < a + 1, else
// 1 - the continued fraction of Q (Lentz), each to double precision.
double gamma_p(double a, double x) {
  if (x <= 0) return 0;
  const double log_front = a * std::log(x) - x - std::lgamma(a);
  if (x < a + 1) {
    double term = 1 / a, total = term;
    for (int n = 1; n < 1000 && std::abs(term) > 1e-17 * std::abs(total); ++n) total += term *= x / (a + n);
    return total * std::exp(log_front);
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, dd = 1 / b, h = dd;
  for (int n = 1; n < 1000; ++n) {
    const double an = -n * (n - a);
    b += 2;
    dd = an * dd + b;
    dd = std::abs(dd) < tiny ? tiny : dd;
    c = b + an / c;
    c = std::abs(c) < tiny ? tiny : c;
    dd = 1 / dd;
    const double delta = dd * c;
    h *= delta;
    if (std::abs(delta - 1) < 1e-16) break;
  }
  return 1 - std::exp(log_front) * h;
}

// y = C~ x, the orthonormal DCT-II (kernels::dct2 scaled by √(1/d) for k = 0, √(2/d) after).
void orthonormal_dct(std::vector<double>& x) {
  const int64_t d = int64_t(x.size());
  std::vector<double> y(x.size());
  kernels::dct2(y.data(), x.data(), d);
  for (int64_t k = 0; k < d; ++k) x[size_t(k)] = y[size_t(k)] * std::sqrt((k == 0 ? 1.0 : 2.0) / double(d));
}
}  // namespace

double chi_quantile(int64_t d, double p) {
  TZ_CHECK(d >= 1 && p > 0 && p < 1, "chi_quantile: needs d >= 1 and 0 < p < 1, got d ", d, ", p ", p);
  // r ~ chi_d  <=>  r^2 / 2 ~ Gamma(a), a = d / 2: solve F(r) = P(a, r^2 / 2) = p by Newton
  // steps with the density F'(r) = r^(d-1) e^(-r^2 / 2) / (2^(a-1) Γ(a)), kept inside a
  // bracket [lo, hi] that each step narrows (bisection when a step leaves it).
  const double a = 0.5 * double(d), log_norm = (a - 1) * std::log(2.0) + std::lgamma(a);
  double lo = 0, hi = std::sqrt(double(d)) + 10;
  while (gamma_p(a, 0.5 * hi * hi) < p) hi *= 2;
  double r = std::sqrt(double(d));
  for (int i = 0; i < 100; ++i) {
    const double f = gamma_p(a, 0.5 * r * r) - p;
    (f < 0 ? lo : hi) = r;
    const double density = std::exp((double(d) - 1) * std::log(r) - 0.5 * r * r - log_norm);
    double next = r - f / density;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (std::abs(next - r) <= 1e-15 * r) return next;
    r = next;
  }
  return r;
}

Tensor dct_qmc_features(int64_t m, int64_t d, Generator& gen, DType dtype) {
  TZ_CHECK(m >= 1 && d >= 1, "dct_qmc_features: needs m, d >= 1, got m ", m, ", d ", d);
  std::vector<int64_t> strata(static_cast<size_t>(m));
  std::iota(strata.begin(), strata.end(), 0);
  for (int64_t i = m - 1; i > 0; --i) std::swap(strata[size_t(i)], strata[size_t(gen.randint(0, i + 1))]);
  const double shift = gen.uniform();
  std::vector<double> w(size_t(m * d));
  for (int64_t r0 = 0; r0 < m; r0 += d) {
    std::vector<double> signs(size_t(3 * d));
    for (double& s : signs) s = gen.uniform() < 0.5 ? -1.0 : 1.0;
    // Q = C~ S3 C~ S2 C~ S1, orthogonal, built column by column (Q e_j).
    std::vector<double> q(size_t(d * d));
    for (int64_t j = 0; j < d; ++j) {
      std::vector<double> v(size_t(d), 0.0);
      v[size_t(j)] = 1;
      for (int round = 0; round < 3; ++round) {
        for (int64_t c = 0; c < d; ++c) v[size_t(c)] *= signs[size_t(round * d + c)];
        orthonormal_dct(v);
      }
      for (int64_t r = 0; r < d; ++r) q[size_t(r * d + j)] = v[size_t(r)];
    }
    for (int64_t r = 0; r < std::min(d, m - r0); ++r) {
      const double len = chi_quantile(d, (double(strata[size_t(r0 + r)]) + shift) / double(m));
      for (int64_t j = 0; j < d; ++j) w[size_t((r0 + r) * d + j)] = len * q[size_t(r * d + j)];
    }
  }
  return from_vector(w, {m, d}).to(dtype);
}

Tensor favor_features(const Tensor& x, const Tensor& w, bool stabilise) {
  TZ_CHECK(w.dim() == 2 && x.size(-1) == w.size(1), "favor_features: x [..., d] and W [m, d], got ", x.shape(), " and ",
           w.shape());
  Tensor e = linear(x, w) - sum(x * x, {x.dim() - 1}, true) * 0.5;
  if (stabilise) e = e - max(e, -1, true).detach();  // cancels under the normaliser
  return exp(e) / std::sqrt(double(w.size(0)));
}

Tensor trig_features(const Tensor& x, const Tensor& w) {
  TZ_CHECK(w.dim() == 2 && x.size(-1) == w.size(1), "trig_features: x [..., d] and W [m, d], got ", x.shape(), " and ",
           w.shape());
  Tensor a = linear(x, w);
  return cat({sin(a), cos(a)}, x.dim() - 1) / std::sqrt(double(w.size(0)));
}

Tensor outer_square(const Tensor& x) {
  Shape s = x.shape();
  const int64_t d = s.back();
  s.back() = d * d;
  return (x.unsqueeze(-1) * x.unsqueeze(-2)).reshape(s);
}

Tensor tensor_power(const Tensor& x, int64_t n) {
  TZ_CHECK(n >= 1, "tensor_power: needs n >= 1, got ", n);
  Tensor out = x;
  for (int64_t i = 1; i < n; ++i) {
    Shape s = x.shape();
    s.back() = out.size(-1) * x.size(-1);
    out = (out.unsqueeze(-1) * x.unsqueeze(-2)).reshape(s);
  }
  return out;
}

Tensor taylor_features(const Tensor& x) {
  Shape s = x.shape();
  s.back() = 1;
  return cat({ones(s, x.dtype()), x, outer_square(x) / std::sqrt(2.0)}, x.dim() - 1);
}

Tensor rebased_features(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  TZ_CHECK((x.dim() == 4 && gamma.shape() == Shape{x.size(1), x.size(3)} && beta.shape() == gamma.shape()),
           "rebased_features: x [B, H, T, d] with gamma, beta [H, d], got ", x.shape(), ", ", gamma.shape(), ", ",
           beta.shape());
  Tensor y = layer_norm(x, Tensor(), Tensor(), eps) * gamma.unsqueeze(1) + beta.unsqueeze(1);
  return outer_square(y);
}

Tensor hedgehog_features(const Tensor& x, const Tensor& w, const Tensor& b) {
  TZ_CHECK((x.dim() == 4 && w.dim() == 3 && w.size(0) == x.size(1) && w.size(1) == x.size(3) &&
            b.shape() == Shape{x.size(1), w.size(2)}),
           "hedgehog_features: x [B, H, T, d] with W [H, d, n], b [H, n], got ", x.shape(), ", ", w.shape(), ", ",
           b.shape());
  Tensor a = matmul(x, w) + b.unsqueeze(1);  // [B, H, T, n]
  return cat({softmax(a), softmax(-a)}, 3);
}

Tensor polynomial_sketch(int64_t r, int64_t n, Generator& gen, DType dtype) {
  TZ_CHECK(r >= 1 && n >= 1, "polynomial_sketch: needs r, n >= 1, got r ", r, ", n ", n);
  std::vector<double> s(size_t(r * n));
  if (r >= n) {  // orthonormal columns: the rows of an orthonormal [n, r] block, transposed
    std::vector<double> rows = orthogonal_draw(n, r, gen);
    for (int64_t i = 0; i < n; ++i) {
      double len = 0;
      for (int64_t c = 0; c < r; ++c) len += rows[size_t(i * r + c)] * rows[size_t(i * r + c)];
      for (int64_t c = 0; c < r; ++c) s[size_t(c * n + i)] = rows[size_t(i * r + c)] / std::sqrt(len);
    }
  } else {
    for (double& v : s) v = gen.normal() / std::sqrt(double(r));
  }
  return from_vector(s, {r, n}).to(dtype);
}

Tensor polysketch_features(const Tensor& x, const Tensor& sketch, int64_t half) {
  Tensor t = tensor_power(x, half);
  TZ_CHECK(sketch.dim() == 2 && sketch.size(1) == t.size(-1), "polysketch_features: the sketch must be [r, d^", half,
           "] = [r, ", t.size(-1), "], got ", sketch.shape());
  return outer_square(linear(t, sketch));
}

Tensor random_permutations(int64_t H, int64_t m, Generator& gen) {
  std::vector<int64_t> all;
  for (int64_t h = 0; h < H; ++h) {
    std::vector<int64_t> p(static_cast<size_t>(m));
    std::iota(p.begin(), p.end(), int64_t(0));
    for (int64_t i = m - 1; i > 0; --i) {  // Fisher-Yates
      const auto j = int64_t(gen.uniform() * double(i + 1));
      std::swap(p[size_t(i)], p[size_t(std::min(j, i))]);
    }
    all.insert(all.end(), p.begin(), p.end());
  }
  return from_vector(all, {H, m});
}

Tensor permute_by_position(const Tensor& phi, const Tensor& perms, int64_t start) {
  TZ_CHECK((phi.dim() == 4 && perms.dtype() == DType::i64 && perms.shape() == Shape{phi.size(1), phi.size(3)}),
           "permute_by_position: phi [B, H, T, m] with i64 permutations [H, m], got ", phi.shape(), " and ",
           perms.shape());
  const int64_t B = phi.size(0), H = phi.size(1), T = phi.size(2), m = phi.size(3);
  // out[g] = phi[inv^n(g)]: the index of position n is the inverse permutation's n-th power.
  std::vector<int64_t> idx(size_t(H * T * m));
  for (int64_t h = 0; h < H; ++h) {
    std::vector<int64_t> inv(static_cast<size_t>(m)), pw(static_cast<size_t>(m));
    for (int64_t f = 0; f < m; ++f) inv[size_t(perms.at({h, f}))] = f;
    std::iota(pw.begin(), pw.end(), int64_t(0));
    for (int64_t n = 0; n < start; ++n)  // inv^start, one composition per position (decode is O(1) per token)
      for (int64_t f = 0; f < m; ++f) pw[size_t(f)] = inv[size_t(pw[size_t(f)])];
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t f = 0; f < m; ++f) idx[size_t((h * T + t) * m + f)] = pw[size_t(f)];
      for (int64_t f = 0; f < m; ++f) pw[size_t(f)] = inv[size_t(pw[size_t(f)])];
    }
  }
  Tensor index = from_vector(idx, {1, H, T, m}).expand({B, H, T, m}).contiguous();
  return gather(phi, 3, index);
}

Tensor softmax_mimicry_kl(const Tensor& q, const Tensor& k, const Tensor& phi_q, const Tensor& phi_k, bool causal) {
  TZ_CHECK(q.dim() == 4 && k.shape() == q.shape() && phi_q.dim() == 4 && phi_k.shape() == phi_q.shape(),
           "softmax_mimicry_kl: q, k [B, H, T, d] and phi_q, phi_k [B, H, T, F], got ", q.shape(), ", ", k.shape(),
           ", ", phi_q.shape(), ", ", phi_k.shape());
  const int64_t T = q.size(2);
  Tensor s = matmul(q, k.transpose(-1, -2)) / std::sqrt(double(q.size(3)));
  Tensor a = matmul(phi_q, phi_k.transpose(-1, -2));  // [B, H, T, T], >= 0 for positive maps
  Tensor keep = causal ? tril(ones({T, T}, q.dtype())) : ones({T, T}, q.dtype());
  Tensor hidden = (1.0 - keep) * 1e30;
  Tensor log_p = log_softmax(s - hidden);  // teacher
  Tensor p = exp(log_p) * keep;
  Tensor am = a * keep + 1e-30;
  Tensor log_phat = log(am) - log(sum(am * keep, {3}, true));
  Tensor kl = sum(p * (log_p * keep - log_phat * keep), {3});
  return mean(kl);
}

}  // namespace tz::nn
