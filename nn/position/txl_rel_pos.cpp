// Transformer-XL relative positions (Dai et al. 2019, arXiv:1901.02860); see txl_rel_pos.h.
#include "nn/position/txl_rel_pos.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/attention/sdpa.h"
#include "nn/position/absolute.h"
#include "nn/registry.h"

namespace tz::nn {

TXLRelativePositions::TXLRelativePositions(int64_t dim_, int64_t heads_, int64_t depth, double base_, Generator& gen)
    : dim(dim_), heads(heads_), base(base_) {
  TZ_CHECK(base > 1, "txl_rel_pos: 'pos_base' must be > 1, got ", base);
  TZ_CHECK(dim % heads == 0, "txl_rel_pos: heads (", heads, ") must divide dim (", dim, ")");
  const int64_t D = dim / heads;
  u = register_parameter("u", randn({heads, D}, gen, DType::f32, 0.0, 0.02));
  v = register_parameter("v", randn({heads, D}, gen, DType::f32, 0.0, 0.02));
  w_r = register_module("w_r", std::make_shared<ModuleList>());
  for (int64_t l = 0; l < std::max<int64_t>(depth, 1); ++l)
    w_r->push_back(std::make_shared<Linear>(LinearOptions{.in = dim, .out = dim, .bias = false}, gen));
}

Tensor TXLRelativePositions::project_r(const Tensor& R, int64_t layer) const {
  TZ_CHECK(layer >= 0 && layer < int64_t(w_r->size()), "txl_rel_pos: layer ", layer, " but built for ", w_r->size(),
           " layers");
  const int64_t N = R.size(0), D = dim / heads;
  return w_r->at<Linear>(size_t(layer))->forward(R).reshape({N, heads, D}).permute({1, 0, 2});  // [H, N, D]
}

Tensor txl_rel_shift(const Tensor& x, int64_t S) {
  const int64_t T = x.size(-2), M = x.size(-1), W = M + 1;
  TZ_CHECK(M == T + S - 1, "txl_rel_shift: expected ", T + S - 1, " columns, got ", M);
  Shape lead(x.shape().begin(), x.shape().end() - 2);
  Shape zshape = lead, flat = lead, rows = lead;
  zshape.insert(zshape.end(), {T, 1});
  flat.push_back(T * W);
  rows.insert(rows.end(), {T, W - 1});
  // Append a zero column: row i now starts at i * W in the flat buffer. Reading the flat
  // buffer from T - 1 in rows of W - 1 puts element (i, T - 1 - i + j) at (i, j).
  Tensor padded = cat({x, zeros(zshape, x.dtype())}, -1).reshape(flat);
  return padded.narrow(-1, T - 1, T * (W - 1)).reshape(rows).narrow(-1, 0, S);
}

Tensor TXLRelativePositions::bias_fast(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                       int64_t layer) const {
  const int64_t T = q.size(2), S = k.size(2), D = q.size(3), M = T + S - 1;
  const int64_t top = q_start + T - 1 - k_start;  // the largest distance, column 0
  // Sinusoids of distances top, top-1, ..., top-M+1 (descending), [M, C].
  Tensor asc = sinusoidal_table(top - M + 1, M, dim, base, DType::f64);
  std::vector<int64_t> rev(static_cast<size_t>(M));
  for (int64_t c = 0; c < M; ++c) rev[size_t(c)] = M - 1 - c;
  Tensor R = index_select(asc, 0, from_vector(rev)).to(q.dtype());
  Tensor r = project_r(R, layer);                               // [H, M, D]
  Tensor bd = matmul(q + v.unsqueeze(1), r.transpose(-1, -2));  // (b)+(d): [B, H, T, M]
  Tensor c = matmul(u.unsqueeze(1), k.transpose(-1, -2));       // (c): [B, H, 1, S]
  return (txl_rel_shift(bd, S) + c) * (1.0 / std::sqrt(double(D)));
}

Tensor TXLRelativePositions::bias_ref(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                      int64_t layer) const {
  const int64_t T = q.size(2), S = k.size(2), D = q.size(3);
  // One sinusoid per (i, j) pair: R_{i-j} for every query and key, [T * S, C].
  Tensor R = empty({T * S, dim}, DType::f64);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) {
      Tensor row = sinusoidal_table((q_start + i) - (k_start + j), 1, dim, base, DType::f64);
      for (int64_t ch = 0; ch < dim; ++ch) R.data<double>()[(i * S + j) * dim + ch] = row.data<double>()[ch];
    }
  Tensor r = project_r(R.to(q.dtype()), layer).reshape({heads, T, S, D});  // [H, T, S, D]
  Tensor qv = (q + v.unsqueeze(1)).unsqueeze(3);                           // [B, H, T, 1, D]
  Tensor bd = sum(qv * r, {-1});                                           // [B, H, T, S]
  Tensor c = sum(u.unsqueeze(1).unsqueeze(1) * k.unsqueeze(2), {-1});      // [B, H, 1, S]
  return (bd + c) * (1.0 / std::sqrt(double(D)));
}

Tensor TXLRelativePositions::query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                              const MixerContext* ctx) const {
  TZ_CHECK(q.dim() == 4 && q.size(1) == heads && q.size(3) == dim / heads && k.dim() == 4 && k.size(1) == heads,
           "txl_rel_pos: needs q, k with ", heads, " heads of size ", dim / heads, " (no kv_heads / dim_head), got q ",
           q.shape(), " k ", k.shape());
  return bias_fast(q, k, q_start, k_start, ctx ? ctx->layer : 0);
}

bool TXLRelativePositions::score_terms(Tensor& q, int64_t S, int64_t q_start, int64_t k_start, SdpaSpec& s,
                                       const MixerContext* ctx) const {
  TZ_CHECK(q.dim() == 4 && q.size(1) == heads && q.size(3) == dim / heads, "txl_rel_pos: needs q with ", heads,
           " heads of size ", dim / heads, " (no dim_head), got q ", q.shape());
  const int64_t T = q.size(2), M = T + S - 1;
  // Sinusoids of the distances q_start - k_start - (S - 1) .. q_start + T - 1 - k_start, ascending
  // (row S - 1 + i - j holds the distance of query i and key j, as the core numbers them).
  Tensor R = sinusoidal_table(q_start - k_start - (S - 1), M, dim, base, DType::f64).to(q.dtype());
  s.rel_k = project_r(R, ctx ? ctx->layer : 0);  // r [H, M, D]
  s.rel_q = q + v.unsqueeze(1);                  // (b) + (d) = (q_i + v)·r_{i-j}
  q = q + u.unsqueeze(1);                        // (a) + (c) = (q_i + u)·k_j
  return true;
}

std::string TXLRelativePositions::describe() const {
  return cat_str("TXLRelativePositions(dim=", dim, ", heads=", heads, ", layers=", w_r->size(), ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_txl_rel_pos(nn::Registry& r) {
  r.add({.id = "txl_rel_pos",
         .summary = "Transformer-XL relative scores (a)+(b)+(c)+(d): sinusoidal R_{i-j}, learned u, v, rel-shift trick",
         .keys = {nn::kPosBase},
         .test_config = R"({"pos": "txl_rel_pos"})",
         .example = R"({"pos": "txl_rel_pos"})",
         .position = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::TXLRelativePositions>(d.dim, d.heads, d.depth, c.get(nn::kPosBase), gen);
         }});
}

}  // namespace tz::zoo
