// ETC's global-local attention: see etc_global_local.h.
#include "nn/sparse_attention/etc_global_local.h"

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

EtcGlobalLocal::EtcGlobalLocal(int64_t dim, int64_t heads, int64_t n_g_, int64_t w_, Generator& gen)
    : SparseAttention(
          SparseAttentionOptions{.dim = dim,
                                 .heads = heads,
                                 .name = cat_str("etc_global_local(n_g=", n_g_, ", w=", w_, ")"),
                                 .attend = [](const Tensor& q, const Tensor&, const Tensor&, int64_t) { return q; }},
          gen),
      n_g(n_g_),
      w(w_) {
  TZ_CHECK(n_g >= 1 && w >= 1, "etc_global_local: expected etc_global >= 1 and sparse_window >= 1, got ", n_g, " and ",
           w);
  global = register_parameter("global", randn({n_g, dim}, gen) * 0.02);
  auto window = std::make_shared<kernels::WindowMask>(w);
  // The layer owns its Attend: `this` outlives it.
  options.attend = [this, window](const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset) {
    auto [kg, vg] = global_kv();
    const int64_t B = q.size(0);
    auto l2l = std::make_shared<kernels::AttentionMask>();
    l2l->terms = {window};
    return attention_merged(q, {{kg.expand({B, -1, -1, -1}), vg.expand({B, -1, -1, -1}), AttentionSpec{}},
                                {k, v, AttentionSpec{.causal = true, .q_offset = q_offset, .mask = l2l}}});
  };
}

std::pair<Tensor, Tensor> EtcGlobalLocal::global_kv() const {
  const int64_t H = options.heads, D = options.dim / H;
  Tensor p = qkv->forward(global).view({n_g, 3, H, D});
  return {p.select(1, 1).permute({1, 0, 2}).unsqueeze(0), p.select(1, 2).permute({1, 0, 2}).unsqueeze(0)};
}

}  // namespace tz::nn

namespace tz::zoo {

void register_etc_global_local(nn::Registry& r) {
  r.add({.id = "etc_global_local",
         .summary = "ETC global-local: learned global tokens every query sees (l2g) plus a look-back window (l2l)",
         .keys = {nn::kEtcGlobal, nn::kSparseWindow},
         .test_config = R"({"mixer": "etc_global_local", "etc_global": 2, "sparse_window": 10})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "etc_global_local", "etc_global": 16, )"
                    R"("sparse_window": 128})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               nn::check_causal_self("etc_global_local", d.causal, d.context_dim);
               return std::make_shared<nn::EtcGlobalLocal>(d.dim, d.heads, c.get(nn::kEtcGlobal),
                                                           c.get(nn::kSparseWindow), gen);
             },
         .chunk = 10});
}

}  // namespace tz::zoo
