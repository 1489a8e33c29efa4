// CoPE contextual positions (Golovneva et al. 2024, arXiv:2405.18719); see cope.h.
#include "nn/position/cope.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/sdpa.h"
#include "nn/config.h"
#include "nn/registry.h"

namespace tz::nn {

CoPEPositions::CoPEPositions(const CoPEOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.max_pos >= 1, "cope: 'cope_max_pos' must be >= 1, got ", o.max_pos);
  TZ_CHECK(o.head_dim > 0, "cope: head size must be positive, got ", o.head_dim);
  TZ_CHECK(o.layers > 0, "cope: layers must be positive, got ", o.layers);
  e = register_parameter("e", randn({o.layers, o.max_pos + 1, o.head_dim}, gen, DType::f32, 0.0, o.init_std));
}

Tensor CoPEPositions::table(int64_t layer) const {
  TZ_CHECK(layer >= 0 && layer < options.layers, "cope: layer ", layer, " but built for ", options.layers, " layers");
  return e.select(0, layer);
}

Tensor CoPEPositions::gates(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                            const MixerContext* ctx) const {
  const int64_t B = q.size(0), T = q.size(2), S = k.size(2), D = q.size(3);
  Tensor logits = matmul(q, k.transpose(-1, -2)) * (1.0 / std::sqrt(double(D)));  // the attention's own logits
  if (force_gate_logit != 0) logits = full(logits.shape(), force_gate_logit, q.dtype());
  // Visible pairs: key position <= query position, and a real key (key_padding).
  std::vector<double> seen(static_cast<size_t>(T * S));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) seen[size_t(i * S + j)] = k_start + j <= q_start + i ? 1.0 : 0.0;
  Tensor g = sigmoid(logits) * from_vector(seen, {T, S}).to(q.dtype());
  if (ctx && ctx->key_padding.defined()) {
    Tensor keep = key_columns(ctx->key_padding, k_start, S, "key_padding");
    TZ_CHECK(keep.size(0) == B, "cope: key_padding must be [", B, ", S], got ", keep.shape());
    std::vector<int64_t> m = keep.to(DType::i64).contiguous().to_vector<int64_t>();
    std::vector<double> f(m.size());
    for (size_t n = 0; n < m.size(); ++n) f[n] = m[n] != 0 ? 1.0 : 0.0;
    g = g * from_vector(f, {B, 1, 1, S}).to(q.dtype());
  }
  return g;
}

Tensor CoPEPositions::positions(const Tensor& g) const {
  // Σ_{k >= j} g_ik = (row total) - (inclusive prefix sum up to j) + g_ij; hidden keys add 0.
  Tensor p = sum(g, {-1}, true) - cumsum(g, -1) + g;
  return clamp(p, 0.0, double(options.max_pos));
}

Tensor CoPEPositions::interpolate(const Tensor& q, const Tensor& p, int64_t layer) const {
  Tensor z = matmul(q, table(layer).to(q.dtype()).transpose(0, 1));  // q_i · e[n]  [B, H, T, P + 1]
  std::vector<int64_t> lo, hi;
  std::vector<double> floor_p;
  {
    NoGradGuard no_grad;
    const std::vector<double> v = p.to(DType::f64).contiguous().to_vector<double>();
    lo.resize(v.size());
    hi.resize(v.size());
    floor_p.resize(v.size());
    for (size_t n = 0; n < v.size(); ++n) {
      floor_p[n] = std::floor(v[n]);
      lo[n] = int64_t(floor_p[n]);
      hi[n] = int64_t(std::ceil(v[n]));
    }
  }
  const Shape& sh = p.shape();
  Tensor z_lo = gather(z, -1, from_vector(lo, sh)), z_hi = gather(z, -1, from_vector(hi, sh));
  Tensor w = p - from_vector(floor_p, sh).to(p.dtype());  // p - ⌊p⌋, differentiable in p (the gates)
  return z_lo + w * (z_hi - z_lo);
}

Tensor CoPEPositions::query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                       const MixerContext* ctx) const {
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && q.size(3) == options.head_dim && k.size(3) == options.head_dim &&
               k.size(1) == q.size(1),
           "cope: needs q [B, H, T, ", options.head_dim, "] and k [B, H, S, ", options.head_dim, "], got q ", q.shape(),
           " k ", k.shape());
  if (ctx) {
    TZ_CHECK(!ctx->forgotten_keys.defined() && !ctx->memory.defined() && ctx->segment == 0,
             "cope: counts keys with its gates, and takes no forgotten_keys, segment memory or staircase mask");
  }
  Tensor p = positions(gates(q, k, q_start, k_start, ctx));
  return interpolate(q, p, ctx ? ctx->layer : 0);
}

std::string CoPEPositions::describe() const {
  return cat_str("CoPEPositions(head_dim=", options.head_dim, ", layers=", options.layers,
                 ", max_pos=", options.max_pos, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

namespace {
const nn::Key<int64_t> kCopeMaxPos{"cope_max_pos", 64,
                                   "largest contextual position p_max: counts beyond it share e[p_max]"};
}  // namespace

void register_cope(nn::Registry& r) {
  r.add({.id = "cope",
         .summary = "Contextual positions: p_ij = sum of gates σ(q_i·k) over keys j..i, q_i·e[p_ij] interpolated",
         .keys = {kCopeMaxPos},
         .test_config = R"({"pos": "cope", "cope_max_pos": 8})",
         .example = R"({"pos": "cope", "cope_max_pos": 64})",
         .position = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           TZ_CHECK(d.causal, "cope: defined for causal attention (a query counts the keys up to it)");
           TZ_CHECK(d.heads > 0 && d.dim % d.heads == 0, "cope: heads (", d.heads, ") must divide dim (", d.dim, ")");
           return std::make_shared<nn::CoPEPositions>(
               nn::CoPEOptions{
                   .head_dim = d.dim / d.heads, .layers = std::max<int64_t>(d.depth, 1), .max_pos = c.get(kCopeMaxPos)},
               gen);
         }});
}

}  // namespace tz::zoo
