// Shaw relative position representations (Shaw et al. 2018, arXiv:1803.02155); see shaw_rel_pos.h.
#include "nn/position/shaw_rel_pos.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/sdpa.h"
#include "nn/config.h"
#include "nn/registry.h"

namespace tz::nn {

ShawRelativePositions::ShawRelativePositions(const ShawOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.max_distance >= 1, "shaw_rel_pos: 'shaw_max_distance' must be >= 1, got ", o.max_distance);
  TZ_CHECK(o.heads > 0 && o.dim % o.heads == 0, "shaw_rel_pos: heads (", o.heads, ") must divide dim (", o.dim, ")");
  TZ_CHECK(o.layers > 0, "shaw_rel_pos: layers must be positive, got ", o.layers);
  const int64_t R = 2 * o.max_distance + 1, D = o.dim / o.heads;
  const double std = 1.0 / std::sqrt(double(R + D));
  a_k = register_parameter("a_k", randn({o.layers, R, D}, gen, DType::f32, 0.0, std));
  a_v = register_parameter("a_v", randn({o.layers, R, D}, gen, DType::f32, 0.0, std));
}

int64_t ShawRelativePositions::bucket(int64_t i, int64_t j) const {
  const int64_t K = options.max_distance;
  return std::clamp<int64_t>(j - i, -K, K) + K;
}

Tensor ShawRelativePositions::keys(int64_t layer) const {
  TZ_CHECK(layer >= 0 && layer < options.layers, "shaw_rel_pos: layer ", layer, " but built for ", options.layers,
           " layers");
  return a_k.select(0, layer);
}

Tensor ShawRelativePositions::values(int64_t layer) const {
  TZ_CHECK(layer >= 0 && layer < options.layers, "shaw_rel_pos: layer ", layer, " but built for ", options.layers,
           " layers");
  return a_v.select(0, layer);
}

Tensor ShawRelativePositions::relative_keys(int64_t layer, int64_t q_start, int64_t k_start, int64_t T,
                                            int64_t S) const {
  const int64_t M = T + S - 1;
  std::vector<int64_t> idx(static_cast<size_t>(M));
  for (int64_t c = 0; c < M; ++c)  // column c = S - 1 + i - j: query i = c - (S - 1) + j with j = 0
    idx[size_t(c)] = bucket(q_start + c - (S - 1), k_start);
  Tensor r = index_select(keys(layer), 0, from_vector(idx));  // [M, D]
  return r.unsqueeze(0).expand({options.heads, M, r.size(1)}).contiguous();
}

Tensor ShawRelativePositions::query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                               const MixerContext* ctx) const {
  const int64_t D = options.dim / options.heads;
  TZ_CHECK(q.dim() == 4 && q.size(1) == options.heads && q.size(3) == D && k.dim() == 4, "shaw_rel_pos: needs q [B, ",
           options.heads, ", T, ", D, "] (no dim_head), got q ", q.shape(), " k ", k.shape());
  const int64_t T = q.size(2), S = k.size(2);
  Tensor rk = relative_keys(ctx ? ctx->layer : 0, q_start, k_start, T, S).to(q.dtype());
  return relative_keys_dense(q, rk, S) * (1.0 / std::sqrt(double(D)));
}

bool ShawRelativePositions::score_terms(Tensor& q, int64_t S, int64_t q_start, int64_t k_start, SdpaSpec& s,
                                        const MixerContext* ctx) const {
  const int64_t D = options.dim / options.heads;
  TZ_CHECK(q.dim() == 4 && q.size(1) == options.heads && q.size(3) == D, "shaw_rel_pos: needs q [B, ", options.heads,
           ", T, ", D, "] (no dim_head), got q ", q.shape());
  TZ_CHECK(!s.rel_q.defined(), "shaw_rel_pos: relative keys are already set");
  s.rel_q = q;  // q_i · a^K_{clip(j - i)}, scaled like q_i · k_j
  s.rel_k = relative_keys(ctx ? ctx->layer : 0, q_start, k_start, q.size(2), S).to(q.dtype());
  return true;
}

Tensor ShawRelativePositions::value_term(const Tensor& probs, int64_t q_offset, const MixerContext* ctx) const {
  TZ_CHECK(probs.dim() == 4 && probs.size(1) == options.heads, "shaw_rel_pos: expected weights [B, ", options.heads,
           ", T, S], got ", probs.shape());
  const int64_t B = probs.size(0), H = probs.size(1), T = probs.size(2), S = probs.size(3);
  // a^V of every pair, [T, S, D]: row (i, j) is a^V_{clip(j - i)} (a gather, differentiable in a^V).
  std::vector<int64_t> idx(static_cast<size_t>(T * S));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) idx[size_t(i * S + j)] = bucket(q_offset + i, j);
  Tensor av = values(ctx ? ctx->layer : 0).to(probs.dtype());
  const int64_t D = av.size(1);
  Tensor pairs = index_select(av, 0, from_vector(idx)).reshape({T, S, D});
  // Per query i: its weights of all batches and heads [B H, S] times its [S, D] vectors.
  Tensor p = probs.permute({2, 0, 1, 3}).contiguous().reshape({T, B * H, S});
  return matmul(p, pairs).reshape({T, B, H, D}).permute({1, 2, 0, 3});  // [B, H, T, D]
}

Tensor ShawRelativePositions::value_term_ref(const Tensor& probs, int64_t q_offset, int64_t layer) const {
  const int64_t B = probs.size(0), H = probs.size(1), T = probs.size(2), S = probs.size(3);
  Tensor av = values(layer).to(DType::f64).contiguous(), p = probs.to(DType::f64).contiguous();
  const int64_t D = av.size(1);
  std::vector<double> z(static_cast<size_t>(B * H * T * D), 0.0);
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S; ++j) {
        const double a = p.data<double>()[(bh * T + i) * S + j];
        const double* row = av.data<double>() + bucket(q_offset + i, j) * D;
        for (int64_t d = 0; d < D; ++d) z[size_t((bh * T + i) * D + d)] += a * row[d];
      }
  return from_vector(z, {B, H, T, D});
}

std::string ShawRelativePositions::describe() const {
  return cat_str("ShawRelativePositions(dim=", options.dim, ", heads=", options.heads, ", layers=", options.layers,
                 ", max_distance=", options.max_distance, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

namespace {
const nn::Key<int64_t> kShawMaxDistance{"shaw_max_distance", 16,
                                        "clipping distance K: offsets beyond ±K share the last of 2K + 1 vectors"};
}  // namespace

void register_shaw_rel_pos(nn::Registry& r) {
  r.add({.id = "shaw_rel_pos",
         .summary = "Learned relative key and value vectors a^K, a^V of the clipped offset clip(j-i, K), per layer",
         .keys = {kShawMaxDistance},
         .test_config = R"({"pos": "shaw_rel_pos"})",
         .example = R"({"pos": "shaw_rel_pos", "shaw_max_distance": 16})",
         .position = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::ShawRelativePositions>(nn::ShawOptions{.dim = d.dim,
                                                                              .heads = d.heads,
                                                                              .layers = std::max<int64_t>(d.depth, 1),
                                                                              .max_distance = c.get(kShawMaxDistance)},
                                                              gen);
         }});
}

}  // namespace tz::zoo
