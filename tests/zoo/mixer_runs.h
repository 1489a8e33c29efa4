// What the mixers' proofs compare, forward and backward: y = f(x) and dL/dx for
// L = sum(y * w), for a mixer or any function of x.
#pragma once

#include <algorithm>
#include <functional>

#include "autograd/ops.h"
#include "nn/mixer.h"
#include "tests/test_util.h"

namespace tz::testing {

struct Run {
  Tensor y, dx;
};
inline Run run(const std::function<Tensor(const Tensor&)>& f, const Tensor& x0, const Tensor& w) {
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor y = f(x);
  sum(y * w).backward();
  return {y.detach(), x.grad()};
}
inline Run run(nn::Mixer& m, const Tensor& x0, const Tensor& w) {
  return run([&](const Tensor& x) { return m.forward(x, {}); }, x0, w);
}
// The larger relative error of y and of dx.
inline double rel_max(const Run& a, const Run& r) { return std::max(rel_max(a.y, r.y), rel_max(a.dx, r.dx)); }

}  // namespace tz::testing
