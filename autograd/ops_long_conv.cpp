// The causal long convolution op: forward and backward side by side, each a call of the
// tensor-level functions in core/long_conv.h (kernels and math in core/kernels/long_conv.h),
// and its composite reference built from plain differentiable ops.
//
// Shape letters: B batch, C channels, L time steps.
#include "autograd/ops_long_conv.h"

#include <cstdlib>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"

namespace tz {

// Saves u, k and D: the backward transforms dy once and correlates it with k (for du) and
// with u (for dk).
Tensor long_conv(const Tensor& u, const Tensor& k, const Tensor& D, const LongConvOptions& options) {
  Tensor y = core::long_conv(u, k, D, options);
  auto det = [](const Tensor& t) { return t.defined() ? t.detach() : Tensor(); };
  make_node(OpId::long_conv, y, {u, k, D}, [us = det(u), ks = det(k), Ds = det(D), options](const Tensor& g) {
    core::LongConvGrads r = core::long_conv_backward(g, us, ks, Ds, options);
    return std::vector<Tensor>{r.du, r.dk, r.dD};
  });
  return y;
}

// T[c, t, s] = k[c, |t - s|], zeroed above the diagonal (s > t), then y = T u + D u.
Tensor long_conv_composite(const Tensor& u, const Tensor& k, const Tensor& D) {
  const int64_t L = u.size(2);
  std::vector<int64_t> lag(static_cast<size_t>(L * L));
  for (int64_t t = 0; t < L; ++t)
    for (int64_t s = 0; s < L; ++s) lag[size_t(t * L + s)] = std::abs(t - s);
  Tensor T = tril(index_select(k, 1, from_vector(lag, {L * L})).view({k.size(0), L, L}));  // [C, L, L]
  Tensor y = matmul(T, u.unsqueeze(-1)).squeeze(-1);                                       // [B, C, L]
  return D.defined() ? y + u * D.unsqueeze(-1) : y;
}

}  // namespace tz
