// TUPE untied positions (Ke et al. 2020, arXiv:2006.15595); see tupe.h.
#include "nn/position/tupe.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/sdpa.h"
#include "nn/position/common.h"
#include "nn/registry.h"

namespace tz::nn {

TUPEPositions::TUPEPositions(int64_t context_, int64_t dim_, int64_t heads_, bool relative, Generator& gen)
    : context(context_), dim(dim_), heads(heads_) {
  TZ_CHECK(dim % heads == 0, "tupe: heads (", heads, ") must divide dim (", dim, ")");
  pos = register_module("pos", std::make_shared<Embedding>(EmbeddingOptions{.num = context, .dim = dim}, gen));
  // p has the embeddings' 0.02 scale; U is N(0, 1/C) so p U keeps it and the term can grow
  // by learning (the paper initialises like the content projections).
  const double std_u = 1.0 / std::sqrt(double(dim));
  u_q = register_module(
      "u_q", std::make_shared<Linear>(LinearOptions{.in = dim, .out = dim, .bias = false, .init_std = std_u}, gen));
  u_k = register_module(
      "u_k", std::make_shared<Linear>(LinearOptions{.in = dim, .out = dim, .bias = false, .init_std = std_u}, gen));
  if (relative) rel = register_module("rel", std::make_shared<T5RelativeBias>(T5BiasOptions{.heads = heads}, gen));
}

Tensor TUPEPositions::position_features(int64_t q_start, int64_t T, int64_t k_start, int64_t S) const {
  TZ_CHECK(q_start >= 0 && k_start >= 0 && q_start + T <= context && k_start + S <= context, "tupe: positions up to ",
           std::max(q_start + T, k_start + S) - 1, " exceed the ", context, " learned positions (raise 'context')");
  ++computations;
  const int64_t D = dim / heads;
  auto heads_of = [&](const std::shared_ptr<Linear>& proj, int64_t start, int64_t n) {
    Tensor p = pos->forward(arange(double(start), double(start + n), 1.0, DType::i64));  // [n, C]
    return proj->forward(p).reshape({n, heads, D}).permute({1, 0, 2});                   // [H, n, D]
  };
  return cat({heads_of(u_q, q_start, T), heads_of(u_k, k_start, S)}, 1);
}

Tensor TUPEPositions::position_term(int64_t q_start, int64_t T, int64_t k_start, int64_t S, DType) const {
  const int64_t D = dim / heads;
  Tensor f = position_features(q_start, T, k_start, S);
  Tensor pq = f.narrow(1, 0, T), pk = f.narrow(1, T, S);
  Tensor term = matmul(pq, pk.transpose(-1, -2)) * (1.0 / std::sqrt(2.0 * double(D)));  // [H, T, S]
  if (rel) {
    // b_{j-i} for queries at q_start.. over keys at k_start..: the T5 table of keys 0..S-1
    // with queries renumbered from q_start - k_start.
    term = term + rel->compute(q_start - k_start, T, S, term.dtype());
  }
  return term;
}

Tensor TUPEPositions::query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                       const MixerContext* ctx) const {
  TZ_CHECK(q.dim() == 4 && q.size(1) == heads && k.dim() == 4 && k.size(1) == heads, "tupe: needs q, k with ", heads,
           " heads (no kv_heads), got q ", q.shape(), " k ", k.shape());
  const int64_t T = q.size(2), S = k.size(2), D = q.size(3);
  Tensor p = carry_once(ctx, cat_str("tupe ", q_start, " ", T, " ", k_start, " ", S, " ", dtype_name(q.dtype())),
                        [&] { return position_term(q_start, T, k_start, S, q.dtype()); });
  // Rescale the attention's content score q k^T / sqrt(D) to q k^T / sqrt(2D).
  Tensor content_fix = matmul(q, k.transpose(-1, -2)) * ((1.0 / std::sqrt(2.0) - 1.0) / std::sqrt(double(D)));
  return content_fix + p.unsqueeze(0);
}

bool TUPEPositions::score_terms(Tensor& q, int64_t S, int64_t q_start, int64_t k_start, SdpaSpec& s,
                                const MixerContext* ctx) const {
  TZ_CHECK(q.dim() == 4 && q.size(1) == heads && q.size(3) == dim / heads, "tupe: needs q with ", heads,
           " heads of size ", dim / heads, ", got q ", q.shape());
  const int64_t T = q.size(2), D = q.size(3);
  const double root_d = std::sqrt(double(D)), root_2d = std::sqrt(2.0 * double(D));
  TZ_CHECK(s.scale == 0 || std::abs(s.scale * root_d - 1) < 1e-12,
           "tupe: the content scale 1/sqrt(2D) replaces the attention's 1/sqrt(D), got a scale of ", s.scale);
  TZ_CHECK(!s.rel_bias.defined(), "tupe: a relative bias table is already set");
  const std::string at = cat_str(q_start, " ", T, " ", k_start, " ", S, " ", dtype_name(q.dtype()));
  Tensor f = carry_once(ctx, "tupe features " + at, [&] { return position_features(q_start, T, k_start, S); });
  s.scale = 1.0 / root_2d;  // (x_i W^Q)(x_j W^K)^T / sqrt(2D)
  s.pair_q = f.narrow(1, 0, T).unsqueeze(0);
  s.pair_k = f.narrow(1, T, S).unsqueeze(0);
  s.pair_scale = 1.0 / root_2d;  // (p_i U^Q)(p_j U^K)^T / sqrt(2D)
  if (rel)                       // b_{j-i}: the T5 table of queries at q_start - k_start over keys 0..S-1
    s.rel_bias = carry_once(ctx, "tupe rel " + at, [&] { return rel->table_bias(q_start - k_start, T, S); });
  return true;
}

std::string TUPEPositions::describe() const {
  return cat_str("TUPEPositions(context=", context, ", dim=", dim, ", heads=", heads, rel ? ", TUPE-R" : ", TUPE-A",
                 ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_tupe(nn::Registry& r) {
  r.add({.id = "tupe",
         .summary = "Untied positions: a separate (p_i U^Q)(p_j U^K)^T/sqrt(2D) score term shared by all layers",
         .keys = {nn::kTupeRelative},
         .test_config = R"({"pos": "tupe"})",
         .example = R"({"pos": "tupe", "context": 256})",
         .position = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::TUPEPositions>(d.context, d.dim, d.heads, c.get(nn::kTupeRelative), gen);
         }});
}

}  // namespace tz::zoo
