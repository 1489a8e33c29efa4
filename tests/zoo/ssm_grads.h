// The LTI SSM layers' forms compared in the proofs: the output and the gradients of
// sum(y w) w.r.t. u and every parameter the SSM uses (out_proj comes after it), by the
// convolution (or parallel) form or by the recurrence: any layer with convolve() and recur()
// (nn/ssm/ssm_block.h, nn/ssm/hippo.h).
#pragma once

#include <doctest/doctest.h>

#include <vector>

#include "autograd/ops.h"

namespace tz::testing {

// `every_parameter`: each parameter must get a gradient; otherwise those a paper's variant
// fixes (no gradient) are left out.
template <class Layer>
std::vector<Tensor> ssm_grads(Layer& m, const Tensor& u, const Tensor& w, bool conv, bool every_parameter = true) {
  m.zero_grad();
  u.zero_grad();
  Tensor y = conv ? m.convolve(u) : m.recur(u);
  sum(y * w).backward();
  std::vector<Tensor> out{y.detach().contiguous(), u.grad().clone()};
  for (const auto& [name, p] : m.named_parameters()) {
    if (name.rfind("out_proj", 0) == 0) continue;
    INFO("parameter ", name);
    if (every_parameter) REQUIRE(p.grad().defined());
    if (!p.grad().defined()) continue;
    out.push_back(p.grad().clone());
  }
  return out;
}

}  // namespace tz::testing
