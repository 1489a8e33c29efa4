// alpha-entmax over the last dim: the sparse relatives of softmax used by entmax attention.
//
// Peters, Niculae, Martins 2019, "Sparse Sequence-to-Sequence Models" (arXiv:1905.05702) and
// Correia, Niculae, Martins 2019, "Adaptively Sparse Transformers" (arXiv:1909.00015).
// For one row z of n scores and alpha > 1:
//   p_i = [(alpha - 1) z_i - tau]_+ ^ (1 / (alpha - 1)),   tau chosen so that sum_i p_i = 1.
// alpha = 2 is sparsemax (p = [z - tau]_+), alpha = 1.5 is entmax15 (p = [z/2 - tau]_+^2),
// alpha -> 1 tends to softmax. tau is found exactly by sorting for alpha = 2 and 1.5, and by
// bisection (then renormalising) for any other alpha. Scores of -inf (masked keys) get p = 0.
//
// Backward (closed form, Peters et al. 2019, Prop. 1): with s_i = p_i^(2 - alpha) on the
// support (p_i > 0) and 0 elsewhere,
//   dz = s * g - (sum_j s_j g_j / sum_j s_j) s.
// The rows are computed in double whatever the dtype (the sums are short: one row of keys).
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"

namespace tz {
namespace {

// Exact threshold for sparsemax: sort descending, the support is the largest k with
// 1 + k z_(k) > sum_{j<=k} z_(j); tau = (sum_{j<=k} z_(j) - 1) / k.
double sparsemax_tau(const std::vector<double>& sorted) {
  double cum = 0, tau = 0;
  for (size_t k = 1; k <= sorted.size(); ++k) {
    cum += sorted[k - 1];
    if (1.0 + double(k) * sorted[k - 1] > cum) tau = (cum - 1.0) / double(k);
  }
  return tau;
}

// Exact threshold for entmax15 on y = z / 2 (sorted descending): on a support of size k,
// sum_j (y_j - tau)^2 = 1 gives tau_k = mean_k - sqrt(1/k - (meansq_k - mean_k^2)); the
// support is the largest k with tau_k < y_(k).
double entmax15_tau(const std::vector<double>& sorted) {
  double s1 = 0, s2 = 0, tau = sorted[0] - 1.0;
  for (size_t k = 1; k <= sorted.size(); ++k) {
    s1 += sorted[k - 1];
    s2 += sorted[k - 1] * sorted[k - 1];
    double mean = s1 / double(k), delta = 1.0 / double(k) - (s2 / double(k) - mean * mean);
    double t = mean - std::sqrt(std::max(delta, 0.0));
    if (t < sorted[k - 1]) tau = t;
  }
  return tau;
}

// p (n) from z (n), -inf entries excluded. Values are shifted by the max first (tau shifts
// with them, p does not change).
void entmax_row(double* p, const double* z, int64_t n, double alpha) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, z[i]);
  std::vector<double> y;  // (alpha - 1)(z - max) of the finite entries
  for (int64_t i = 0; i < n; ++i)
    if (std::isfinite(z[i])) y.push_back((alpha - 1.0) * (z[i] - mx));
  TZ_CHECK(!y.empty(), "entmax: a row has no finite score");
  const double inv = 1.0 / (alpha - 1.0);
  auto at = [&](int64_t i) { return std::isfinite(z[i]) ? (alpha - 1.0) * (z[i] - mx) : -INFINITY; };
  if (alpha == 2.0 || alpha == 1.5) {
    std::sort(y.begin(), y.end(), std::greater<double>());
    double tau = alpha == 2.0 ? sparsemax_tau(y) : entmax15_tau(y);
    for (int64_t i = 0; i < n; ++i) {
      double d = std::max(at(i) - tau, 0.0);
      p[i] = alpha == 2.0 ? d : d * d;
    }
    return;
  }
  // Bisection: the max entry is 0 after the shift, so tau in [-1, -(1/n)^(alpha-1)] brackets
  // sum p = 1 (at -1 the max alone gives 1; at the upper end every p_i <= 1/n).
  double lo = -1.0, hi = -std::pow(1.0 / double(y.size()), alpha - 1.0);
  for (int it = 0; it < 100 && hi - lo > 0; ++it) {
    double mid = 0.5 * (lo + hi), s = 0;
    for (double v : y) s += v > mid ? std::pow(v - mid, inv) : 0.0;
    (s >= 1.0 ? lo : hi) = mid;
  }
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[i] = at(i) > lo ? std::pow(at(i) - lo, inv) : 0.0;
  for (int64_t i = 0; i < n; ++i) p[i] /= s;  // remove the last bisection error
}

// dz (n) from p (n) and g (n): dz = s g - (s.g / sum s) s, s = p^(2 - alpha) on the support.
void entmax_backward_row(double* dz, const double* p, const double* g, int64_t n, double alpha) {
  double sg = 0, ss = 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = p[i] > 0 ? (alpha == 2.0 ? 1.0 : std::pow(p[i], 2.0 - alpha)) : 0.0;
    dz[i] = s;
    sg += s * g[i];
    ss += s;
  }
  double c = sg / ss;
  for (int64_t i = 0; i < n; ++i) dz[i] = dz[i] * (g[i] - c);
}

// Runs `row` over every row of the last dim, in double, writing a tensor of x's dtype.
Tensor map_rows(const Tensor& a, const Tensor& b,
                const std::function<void(double*, const double*, const double*, int64_t)>& row) {
  const int64_t n = a.size(-1), rows = n ? a.numel() / n : 0;
  std::vector<double> x = a.to_vector<double>(), y = b.defined() ? b.to_vector<double>() : std::vector<double>();
  std::vector<double> out(x.size());
  for (int64_t r = 0; r < rows; ++r)
    row(out.data() + r * n, x.data() + r * n, y.empty() ? nullptr : y.data() + r * n, n);
  Tensor t = from_vector(out, a.shape());
  return a.dtype() == DType::f64 ? t : t.to(a.dtype());
}

}  // namespace

Tensor entmax(const Tensor& x, double alpha) {
  TZ_CHECK(alpha > 1.0 && std::isfinite(alpha), "entmax: alpha must be > 1 (1 is softmax), got ", alpha);
  TZ_CHECK(x.dim() >= 1 && (x.dtype() == DType::f32 || x.dtype() == DType::f64),
           "entmax: expected a floating tensor of rank >= 1, got ", dtype_name(x.dtype()), " ", x.shape());
  Tensor out = map_rows(x.detach(), Tensor(),
                        [alpha](double* p, const double* z, const double*, int64_t n) { entmax_row(p, z, n, alpha); });
  Tensor ys = out.detach();
  make_node(OpId::entmax, out, {x}, [ys, alpha](const Tensor& g) {
    return std::vector<Tensor>{map_rows(ys, g, [alpha](double* dz, const double* p, const double* gr, int64_t n) {
      entmax_backward_row(dz, p, gr, n, alpha);
    })};
  });
  return out;
}

}  // namespace tz
