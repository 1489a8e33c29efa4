// Local attention with G KV heads and a window-bounded cache: see local_mqa.h.
#include "nn/sparse_attention/local_mqa.h"

#include <algorithm>

#include "core/copy.h"
#include "core/creation.h"

namespace tz::nn {

LocalMqa::LocalMqa(const LocalMqaOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0,
           "local_attention: dim must be a positive multiple of heads, got dim ", o.dim, ", heads ", o.heads);
  TZ_CHECK(o.kv_heads >= 1 && o.heads % o.kv_heads == 0, "local_attention: sparse_kv_heads must divide heads (",
           o.heads, "), got ", o.kv_heads);
  TZ_CHECK(o.window >= 1, "local_attention: sparse_window must be >= 1, got ", o.window);
  const int64_t C = o.dim, D = C / o.heads;
  auto lin = [&](const char* name, int64_t in, int64_t out_dim) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = in, .out = out_dim, .bias = false}, gen));
  };
  q_proj = lin("q_proj", C, C);
  kv_proj = lin("kv_proj", C, 2 * o.kv_heads * D);
  out = lin("out", C, C);
}

Tensor LocalMqa::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0 &&
               ctx.context == nullptr,
           describe(), ": takes no key padding, forgotten keys, segment memory or context");
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": expected x [B, T, ", options.dim, "], got ",
           x.shape());
  const int64_t B = x.size(0), T = x.size(1), H = options.heads, G = options.kv_heads, D = options.dim / H;
  const int64_t W = options.window - 1;
  Tensor q = q_proj->forward(x).view({B, T, H, D}).permute({0, 2, 1, 3});
  Tensor kv = kv_proj->forward(x).view({B, T, 2, G, D});
  Tensor k = kv.select(2, 0).permute({0, 2, 1, 3}), v = kv.select(2, 1).permute({0, 2, 1, 3});
  // new keys rotated at their own positions before they enter the cache
  if (ctx.pos && ctx.pos->rotates()) ctx.pos->rotate(q, k, ctx.start, ctx.start);
  int64_t q_offset = 0;
  if (state) {
    LocalMqaState& s = own_state<LocalMqaState>(state, ctx);
    if (s.keys > 0) {
      k = cat({s.k.narrow(2, W - s.keys, s.keys), k}, 2);
      v = cat({s.v.narrow(2, W - s.keys, s.keys), v}, 2);
    }
    q_offset = s.keys;
    // keep the newest min(W, keys + T) positions, right-aligned
    const int64_t S = k.size(2), keep = std::min(W, S);
    if (keep > 0) {
      Tensor k_tail = k.narrow(2, S - keep, keep).detach().contiguous();
      Tensor v_tail = v.narrow(2, S - keep, keep).detach().contiguous();
      core::copy_(s.k.narrow(2, W - keep, keep), k_tail);
      core::copy_(s.v.narrow(2, W - keep, keep), v_tail);
    }
    s.keys = keep;
    s.length += T;
  }
  Tensor o = attend_masked(q, k, v, q_offset, std::make_shared<kernels::WindowMask>(options.window));
  return out->forward(o.permute({0, 2, 1, 3}).reshape({B, T, options.dim}));
}

std::unique_ptr<MixerState> LocalMqa::make_state(int64_t batch, int64_t, DType dtype) const {
  auto s = std::make_unique<LocalMqaState>();
  const int64_t D = options.dim / options.heads;
  s->k = zeros({batch, options.kv_heads, options.window - 1, D}, dtype);
  s->v = zeros({batch, options.kv_heads, options.window - 1, D}, dtype);
  return s;
}

std::string LocalMqa::describe() const {
  return cat_str("local_attention(w=", options.window, ", kv_heads=", options.kv_heads, ", dim=", options.dim,
                 ", heads=", options.heads, ")");
}

}  // namespace tz::nn
