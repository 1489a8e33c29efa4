// Cross-attention: the attention pipeline over a context (cross_attention.h).
#include "nn/attention/cross_attention.h"

namespace tz::nn {

namespace {
AttentionOptions cross_options(const CrossAttentionOptions& o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0, "CrossAttention: heads (", o.heads, ") must divide dim (",
           o.dim, ")");
  return {.dim = o.dim,
          .heads = o.heads,
          .causal = o.causal,
          .bias = o.bias,
          .out_init_std = 0.02,
          .context_dim = o.context_dim > 0 ? o.context_dim : o.dim};
}
}  // namespace

CrossAttention::CrossAttention(const CrossAttentionOptions& o, Generator& gen) : Attention(cross_options(o), gen) {}

Tensor CrossAttention::forward(const Tensor& x, const Tensor& context, const Tensor& context_mask) {
  return Attention::forward(x, {.context = &context, .context_padding = context_mask});
}

}  // namespace tz::nn
