// The layer shared by the sparse attention mixers: see common.h.
#include "nn/sparse_attention/common.h"

#include "core/copy.h"
#include "core/creation.h"

namespace tz::nn {

Tensor attend_masked(const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset,
                     std::shared_ptr<const kernels::MaskTerm> term) {
  std::shared_ptr<kernels::AttentionMask> mask;
  if (term) {
    mask = std::make_shared<kernels::AttentionMask>();
    mask->terms = {std::move(term)};
  }
  return attention(q, k, v, AttentionSpec{.causal = true, .q_offset = q_offset, .mask = mask});
}

Attend attend_pattern(kernels::SparsePattern pattern) {
  return attend_pattern([p = std::move(pattern)](int64_t, int64_t) { return p; });
}

Attend attend_pattern(kernels::LayoutCache::PatternFor pattern_for) {
  auto cache = std::make_shared<kernels::LayoutCache>(std::move(pattern_for));
  return [cache](const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset) {
    return attend_masked(q, k, v, q_offset, cache->get(q.size(1), k.size(2)));
  };
}

SparseAttention::SparseAttention(SparseAttentionOptions o, Generator& gen) : options(std::move(o)) {
  TZ_CHECK(options.dim > 0 && options.heads > 0 && options.dim % options.heads == 0, options.name,
           ": dim must be a positive multiple of heads, got dim ", options.dim, ", heads ", options.heads);
  TZ_CHECK(bool(options.attend), options.name, ": no attention given");
  const int64_t C = options.dim;
  qkv = register_module("qkv", std::make_shared<Linear>(LinearOptions{.in = C, .out = 3 * C, .bias = false}, gen));
  out = register_module("out", std::make_shared<Linear>(LinearOptions{.in = C, .out = C, .bias = false}, gen));
}

SparseAttention::Projected SparseAttention::project(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0 &&
               ctx.context == nullptr,
           options.name, ": takes no key padding, forgotten keys, segment memory or context");
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, options.name, ": expected x [B, T, ", options.dim, "], got ",
           x.shape());
  const int64_t B = x.size(0), T = x.size(1), H = options.heads, D = options.dim / H;
  // [B, T, 3, H, D] -> three [B, H, T, D] views, read in place by the kernel.
  Tensor p = qkv->forward(x).view({B, T, 3, H, D});
  Tensor q = p.select(2, 0).permute({0, 2, 1, 3}), k = p.select(2, 1).permute({0, 2, 1, 3}),
         v = p.select(2, 2).permute({0, 2, 1, 3});
  int64_t q_offset = 0;
  if (state) {
    SparseKVState& s = own_state<SparseKVState>(state, ctx);
    TZ_CHECK(s.length + T <= s.k.size(2), options.name, ": the cache holds ", s.k.size(2), " positions, ", s.length + T,
             " asked");
    core::copy_(s.k.narrow(2, s.length, T), k.detach());
    core::copy_(s.v.narrow(2, s.length, T), v.detach());
    q_offset = s.length;
    s.length += T;
    k = s.k.narrow(2, 0, s.length);
    v = s.v.narrow(2, 0, s.length);
  }
  return {q, k, v, q_offset};
}

Tensor SparseAttention::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  auto [q, k, v, q_offset] = project(x, ctx, state);
  const int64_t B = x.size(0), T = x.size(1);
  Tensor o = options.attend(q, k, v, q_offset);
  return out->forward(o.permute({0, 2, 1, 3}).reshape({B, T, options.dim}));
}

std::unique_ptr<MixerState> SparseAttention::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  auto s = std::make_unique<SparseKVState>();
  const int64_t H = options.heads, D = options.dim / H;
  s->k = zeros({batch, H, capacity, D}, dtype);
  s->v = zeros({batch, H, capacity, D}, dtype);
  return s;
}

std::string SparseAttention::describe() const {
  return cat_str(options.name, "(dim=", options.dim, ", heads=", options.heads, ")");
}

void check_causal_self(const char* id, bool causal, int64_t context_dim) {
  TZ_CHECK(causal && context_dim == 0, id, ": a causal self-mixer only (no encoder or cross use)");
}

}  // namespace tz::nn
