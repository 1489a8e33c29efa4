#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <sstream>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/random.h"

namespace tz {

namespace {
// Storage offset (in elements) of logical element `flat` of t.
int64_t storage_offset(const Tensor& t, int64_t flat) {
  int64_t off = t.offset();
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (flat % t.shape()[d]) * t.strides()[d];
    flat /= t.shape()[d];
  }
  return off;
}

double projected(const GradcheckFn& fn, const std::vector<Tensor>& inputs, const Tensor& w) {
  NoGradGuard no_grad;
  Tensor y = fn(inputs);
  std::vector<double> yv = y.to_vector<double>(), wv = w.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < yv.size(); ++i) s += yv[i] * wv[i];
  return s;
}

// A random index in stratum i of m equal strata over [0, n): [i n / m, (i+1) n / m),
// widened to one index when n < m leaves it empty.
int64_t in_stratum(Generator& gen, int64_t i, int64_t m, int64_t n) {
  const int64_t lo = i * n / m, hi = std::max((i + 1) * n / m, lo + 1);
  return gen.randint(lo, hi);
}
}  // namespace

std::vector<int64_t> gradcheck_elements(const Shape& shape, const GradcheckOptions& opt, size_t input) {
  const int64_t n = shape_numel(shape);
  const int64_t m = std::max(opt.max_elements, opt.min_elements);
  std::vector<int64_t> which;
  if (opt.max_elements <= 0 || n < opt.check_all_below || n <= m) {
    which.resize(size_t(n));
    std::iota(which.begin(), which.end(), int64_t(0));
    return which;
  }
  const int64_t R = shape.empty() ? 1 : shape[0], N = n / R;
  Generator gen(opt.seed ^ (0x9e3779b97f4a7c15ull * (uint64_t(input) + 1)));
  // Column strata in shuffled order, so that rows and columns are both spread and a
  // row's position does not fix its column.
  std::vector<int64_t> col(static_cast<size_t>(m));
  std::iota(col.begin(), col.end(), int64_t(0));
  for (int64_t i = m - 1; i > 0; --i) std::swap(col[size_t(i)], col[size_t(gen.randint(0, i + 1))]);
  // When rows or columns are fewer than m, two strata can share a cell: redraw the column
  // (anywhere in the row after a few tries) so that the sample keeps m distinct elements.
  std::set<int64_t> taken;
  for (int64_t i = 0; i < m; ++i) {
    const int64_t row = in_stratum(gen, i, m, R);
    int64_t e = row * N + in_stratum(gen, col[size_t(i)], m, N);
    for (int tries = 0; taken.count(e) && tries < 16; ++tries)
      e = row * N + (tries < 4 ? in_stratum(gen, col[size_t(i)], m, N) : gen.randint(0, N));
    taken.insert(e);
    which.push_back(e);
  }
  // One more element in every block of block_rows rows.
  int64_t block = 0;
  if (opt.block_rows.size() == 1)
    block = opt.block_rows[0];
  else if (input < opt.block_rows.size())
    block = opt.block_rows[input];
  if (block > 0)
    for (int64_t r0 = 0; r0 < R; r0 += block)
      which.push_back(gen.randint(r0, std::min(r0 + block, R)) * N + gen.randint(0, N));
  std::sort(which.begin(), which.end());
  which.erase(std::unique(which.begin(), which.end()), which.end());
  return which;
}

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  TZ_CHECK(opt.block_rows.size() <= 1 || opt.block_rows.size() == inputs.size(),
           "gradcheck: block_rows must hold 0, 1 or one value per input (", inputs.size(), "), got ",
           opt.block_rows.size());
  for (const Tensor& x : inputs) {
    if (!x.defined() || !x.requires_grad()) continue;
    TZ_CHECK(x.dtype() == DType::f64, "gradcheck: inputs that require grad must be f64, got ", dtype_name(x.dtype()),
             " of shape ", x.shape());
    TZ_CHECK(x.is_leaf(), "gradcheck: inputs must be leaf tensors");
    for (int64_t d = 0; d < x.dim(); ++d)
      TZ_CHECK(x.strides()[d] != 0 || x.shape()[d] == 1,
               "gradcheck: broadcast (stride 0) inputs are not supported, shape ", x.shape());
  }
  // Analytic gradients of L = sum(w * y).
  Tensor y = fn(inputs);
  TZ_CHECK(y.dtype() == DType::f64, "gradcheck: fn must return f64, got ", dtype_name(y.dtype()));
  TZ_CHECK(y.requires_grad(), "gradcheck: the output does not depend on any input that requires grad");
  Generator gen(opt.seed);
  Tensor w = randn(y.shape(), gen, DType::f64);
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) x.zero_grad();
  y.backward(w);

  GradcheckResult result;
  std::ostringstream report;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    GradcheckTensor line;
    line.name = k < opt.names.size() ? opt.names[k] : "input " + std::to_string(k);
    line.shape = x.shape();
    Tensor g = x.grad();
    std::vector<double> gv = g.defined() ? g.to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    double* base = static_cast<double*>(x.storage()->data);
    std::vector<int64_t> which = gradcheck_elements(x.shape(), opt, k);
    double worst = 0, worst_a = 0, worst_n = 0;
    int64_t worst_i = -1;
    bool all_zero = true;
    for (int64_t i : which) {
      double& v = base[storage_offset(x, i)];
      const double saved = v;
      v = saved + opt.eps;
      double lp = projected(fn, inputs, w);
      v = saved - opt.eps;
      double lm = projected(fn, inputs, w);
      v = saved;
      double numerical = (lp - lm) / (2 * opt.eps);
      double err = std::abs(gv[size_t(i)] - numerical);
      if (std::isnan(err)) err = INFINITY;
      all_zero = all_zero && gv[size_t(i)] == 0.0 && numerical == 0.0;
      bool bad = !(err <= opt.atol + opt.rtol * std::abs(numerical));  // NaN fails
      line.max_abs_error = std::max(line.max_abs_error, err);
      if (bad) {
        ++line.failed;
        if (worst_i < 0 || err > worst) worst = err, worst_a = gv[size_t(i)], worst_n = numerical, worst_i = i;
      }
    }
    line.checked = int64_t(which.size());
    line.vacuous = line.checked > 0 && all_zero;
    result.max_abs_error = std::max(result.max_abs_error, line.max_abs_error);
    if (worst_i >= 0) {
      result.ok = false;
      report << line.name << " (shape " << shape_str(x.shape()) << "): " << line.failed << " of " << line.checked
             << " checked elements fail, worst element " << worst_i << " analytic " << worst_a << " vs numerical "
             << worst_n << "; ";
    }
    if (line.vacuous) result.vacuous.push_back(line.name);
    result.tensors.push_back(std::move(line));
  }
  if (!result.vacuous.empty()) {
    if (!opt.allow_vacuous) result.ok = false;
    report << "vacuous (analytic and numerical gradients exactly zero on every checked element):";
    for (const std::string& name : result.vacuous) report << " " << name;
    report << "; ";
  }
  std::string r = report.str();
  if (r.size() >= 2) r.resize(r.size() - 2);  // the last "; "
  result.report = result.ok && result.vacuous.empty() ? "ok" : result.ok ? "ok, " + r : r;
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) x.zero_grad();
  return result;
}

}  // namespace tz
