#include "nn/attention/cross_attention.h"

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "core/creation.h"

namespace tz::nn {

CrossAttention::CrossAttention(const CrossAttentionOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0, "CrossAttention: heads (", o.heads,
           ") must divide dim (", o.dim, ")");
  if (options.context_dim == 0) options.context_dim = o.dim;
  q = register_module("q", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = o.dim, .bias = o.bias}, gen));
  kv = register_module("kv", std::make_shared<Linear>(
                                 LinearOptions{.in = options.context_dim, .out = 2 * o.dim, .bias = o.bias}, gen));
  out = register_module("out", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = o.dim, .bias = o.bias}, gen));
}

Tensor key_mask_bias(const Tensor& mask, DType dtype) {
  TZ_CHECK(mask.dim() == 2, "key mask: expected [B, S], got ", mask.shape());
  std::vector<double> m = mask.to_vector<double>();
  for (double& v : m) v = v != 0 ? 0.0 : -std::numeric_limits<double>::infinity();
  return from_vector(m, {mask.size(0), 1, 1, mask.size(1)}).to(dtype);
}

Tensor CrossAttention::forward(const Tensor& x, const Tensor& c, const Tensor& mask) const {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim && c.dim() == 3 && c.size(2) == options.context_dim &&
               c.size(0) == x.size(0),
           "CrossAttention: expected x [B, T, ", options.dim, "] and context [B, S, ", options.context_dim,
           "], got ", x.shape(), " and ", c.shape());
  const int64_t B = x.size(0), T = x.size(1), S = c.size(1), H = options.heads, D = options.dim / H;
  Tensor qh = q->forward(x).view({B, T, H, D}).permute({0, 2, 1, 3});  // [B, H, T, D]
  Tensor kvh = kv->forward(c).view({B, S, 2, H, D});
  Tensor k = kvh.select(2, 0).permute({0, 2, 1, 3}), v = kvh.select(2, 1).permute({0, 2, 1, 3});
  Tensor scores = matmul(qh, k.transpose(-1, -2)) * (1.0 / std::sqrt(double(D)));  // [B, H, T, S]
  if (mask.defined()) {
    TZ_CHECK((mask.shape() == Shape{B, S}), "CrossAttention: context_mask must be [", B, ", ", S, "], got ", mask.shape());
    scores = scores + key_mask_bias(mask, scores.dtype());
  }
  if (options.causal) scores = masked_fill(scores, triu(ones({T, S}, DType::i64), 1), -std::numeric_limits<double>::infinity());
  Tensor y = matmul(softmax(scores), v);  // [B, H, T, D]
  return out->forward(y.permute({0, 2, 1, 3}).reshape({B, T, options.dim}));
}

std::string CrossAttention::describe() const {
  return cat_str("CrossAttention(dim=", options.dim, ", heads=", options.heads, ", context_dim=", options.context_dim,
                 options.causal ? ", causal" : "", ")");
}

}  // namespace tz::nn
