// Linformer: see linformer.h.
#include "nn/approx_attention/linformer.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/registry.h"

namespace tz::nn {

Linformer::Share Linformer::parse_share(const std::string& s) {
  if (s == "none") return Share::none;
  if (s == "headwise") return Share::headwise;
  if (s == "kv") return Share::kv;
  throw Error(cat_str("linformer: linformer_share must be none, headwise or kv, got \"", s, "\""));
}

Linformer::Linformer(int64_t dim_, int64_t heads_, int64_t context_, int64_t k_, Share share_, Generator& gen)
    : dim(dim_), heads(heads_), context(context_), k(k_), share(share_) {
  TZ_CHECK(dim > 0 && heads > 0 && dim % heads == 0, "linformer: dim must be a positive multiple of heads, got dim ",
           dim, ", heads ", heads);
  TZ_CHECK(context > 0, "linformer: needs the model's context length n (the size of E and F), got ", context);
  TZ_CHECK(k >= 1, "linformer: linformer_k must be >= 1, got ", k);
  qkv = register_module("qkv", std::make_shared<Linear>(LinearOptions{.in = dim, .out = 3 * dim, .bias = false}, gen));
  out = register_module("out", std::make_shared<Linear>(LinearOptions{.in = dim, .out = dim, .bias = false}, gen));
  const int64_t n_proj = share == Share::none ? heads : 1;
  const double a = 1.0 / std::sqrt(double(k));
  E = register_parameter("E", rand({n_proj, k, context}, gen, DType::f32, -a, a));
  if (share != Share::kv) F = register_parameter("F", rand({n_proj, k, context}, gen, DType::f32, -a, a));
}

Tensor Linformer::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(state == nullptr, "linformer: no step form (", why_no_step(), ")");
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0 &&
               ctx.context == nullptr,
           "linformer: takes no key padding, forgotten keys, segment memory or context");
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim, "linformer: expected x [B, T, ", dim, "], got ", x.shape());
  const int64_t B = x.size(0), T = x.size(1), H = heads, D = dim / H;
  TZ_CHECK(T <= context, "linformer: E and F are sized for n = ", context, " positions, got T = ", T);
  Tensor p = qkv->forward(x).view({B, T, 3, H, D});
  Tensor q = p.select(2, 0).permute({0, 2, 1, 3}), kk = p.select(2, 1).permute({0, 2, 1, 3}),
         v = p.select(2, 2).permute({0, 2, 1, 3});
  // [H or 1, k, T] broadcast over the batch: E k [B, H, k, D].
  Tensor e = E.narrow(2, 0, T), f = share == Share::kv ? e : F.narrow(2, 0, T);
  Tensor kp = matmul(e, kk), vp = matmul(f, v);
  Tensor o = attention(q, kp, vp, AttentionSpec{});  // every query sees all k projected keys
  return out->forward(o.permute({0, 2, 1, 3}).reshape({B, T, dim}));
}

std::string Linformer::describe() const {
  const char* s = share == Share::none ? "none" : share == Share::headwise ? "headwise" : "kv";
  return cat_str("linformer(dim=", dim, ", heads=", heads, ", n=", context, ", k=", k, ", share=", s, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_linformer(nn::Registry& r) {
  r.add({.id = "linformer",
         .summary = "Linformer: keys and values projected along time to length k (E, F in R^{k x n}), not causal",
         .keys = {nn::kLinformerK, nn::kLinformerShare},
         .test_config = R"({"mixer": "linformer", "linformer_k": 16})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "linformer", "linformer_k": 64})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.context_dim == 0, "linformer: a self-attention mixer, not cross-attention");
               return std::make_shared<nn::Linformer>(d.dim, d.heads, d.context, c.get(nn::kLinformerK),
                                                      nn::Linformer::parse_share(c.get(nn::kLinformerShare)), gen);
             },
         .learn_steps = 800,
         .learn_lr = 3e-3,
         .learn_task = "copy_blank",
         .learn_reason =
             "not causal: copy's targets are its next inputs, which a bidirectional mixer reads; "
             "copy_blank asks for the same tokens into blanks; k 16 = its length (k 8: 0.14-0.64), lr 3e-3 for 800 "
             "steps passes seeds 0-3 (lr 1e-2: seed 1 at 0.18)"});
}

}  // namespace tz::zoo
