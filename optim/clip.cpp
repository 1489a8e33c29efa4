// Gradient clipping by global norm (see clip.h).
#include "optim/clip.h"

#include <cmath>

#include "autograd/node.h"
#include "core/copy.h"
#include "core/dtype.h"
#include "core/kernels/optim.h"

namespace tz::optim {

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  TZ_CHECK(max_norm >= 0 && !std::isnan(max_norm), "clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  NoGradGuard no_grad;
  double sum_sq = 0;  // f64 over every gradient
  for (const Tensor& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined()) continue;
    Tensor gc = core::contiguous(g);  // no copy when already contiguous
    sum_sq += TZ_DISPATCH_FLOAT(gc.dtype(), "clip_grad_norm",
                                [&]<class T>() { return kernels::sum_squares<T>(gc.data<T>(), gc.numel()); });
  }
  double norm = std::sqrt(sum_sq);
  if (!std::isfinite(norm)) return norm;  // report; scaling by NaN would spoil every grad
  double factor = max_norm / (norm + 1e-6);
  if (factor >= 1) return norm;
  for (const Tensor& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined()) continue;
    if (g.is_contiguous()) {
      TZ_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm",
                        [&]<class T>() { kernels::scale_inplace<T>(g.data<T>(), g.numel(), factor); });
    } else {  // rare (a strided gradient): scale a copy and write it back
      Tensor c = core::clone(g);
      TZ_DISPATCH_FLOAT(c.dtype(), "clip_grad_norm",
                        [&]<class T>() { kernels::scale_inplace<T>(c.data<T>(), c.numel(), factor); });
      core::copy_(g, c);
    }
  }
  return norm;
}

}  // namespace tz::optim
