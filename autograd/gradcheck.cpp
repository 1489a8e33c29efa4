#include "autograd/gradcheck.h"

#include <cmath>
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
}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  for (const Tensor& x : inputs) {
    if (!x.defined() || !x.requires_grad()) continue;
    TZ_CHECK(x.dtype() == DType::f64, "gradcheck: inputs that require grad must be f64, got ",
             dtype_name(x.dtype()), " of shape ", x.shape());
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
    Tensor g = x.grad();
    std::vector<double> gv = g.defined() ? g.to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    double* base = static_cast<double*>(x.storage()->data);
    int64_t n = x.numel();
    std::vector<int64_t> which;
    if (opt.max_elements > 0 && n > opt.max_elements) {
      Generator pick(opt.seed + k);
      for (int64_t i = 0; i < opt.max_elements; ++i) which.push_back(pick.randint(0, n));
    } else {
      for (int64_t i = 0; i < n; ++i) which.push_back(i);
    }
    double worst = 0, worst_a = 0, worst_n = 0;
    int64_t worst_i = -1;
    for (int64_t i : which) {
      double& v = base[storage_offset(x, i)];
      const double saved = v;
      v = saved + opt.eps;
      double lp = projected(fn, inputs, w);
      v = saved - opt.eps;
      double lm = projected(fn, inputs, w);
      v = saved;
      double numerical = (lp - lm) / (2 * opt.eps);
      double err = std::abs(gv[i] - numerical);
      bool bad = !(err <= opt.atol + opt.rtol * std::abs(numerical));  // NaN fails
      result.max_abs_error = std::max(result.max_abs_error, std::isnan(err) ? INFINITY : err);
      if (bad && (worst_i < 0 || err > worst || std::isnan(err))) {
        worst = err, worst_a = gv[i], worst_n = numerical, worst_i = i;
      }
    }
    if (worst_i >= 0) {
      result.ok = false;
      report << "input " << k << " (shape " << shape_str(x.shape()) << "): element " << worst_i
             << " analytic " << worst_a << " vs numerical " << worst_n << "; ";
    }
  }
  result.report = result.ok ? "ok" : report.str();
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) x.zero_grad();
  return result;
}

}  // namespace tz
