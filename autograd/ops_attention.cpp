// The fused attention op: forward and backward side by side, each a call of the tensor-level
// functions in core/attention.h (kernels and math in core/kernels/attention.h), and its
// composite reference built from the plain differentiable ops.
//
// Shape letters: B batch, H query heads, G key/value heads, T queries, S keys, D head dim.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "autograd/ops.h"
#include "core/attention.h"
#include "core/creation.h"

namespace tz {

// Saves q, k, v, the output and the per-row log-sum-exp lse [B, H, T] - O(T) extra memory,
// not the T x S probabilities: the backward recomputes them tile by tile (top-k adds its
// thresholds [B, H, T]). The closure holds the spec (its mask by shared_ptr, so mask terms
// live as long as the graph) with the bias table and the score terms' operands detached.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec) {
  core::AttentionForward f = core::attention(q, k, v, spec);
  AttentionSpec saved = spec;
  for (Tensor* t : {&saved.rel_bias, &saved.rel_q, &saved.rel_k, &saved.pair_q, &saved.pair_k})
    if (t->defined()) *t = t->detach();
  saved.topk_threshold = f.threshold;
  Tensor qs = q.detach(), ks = k.detach(), vs = v.detach(), os = f.out.detach(), lse = f.lse;
  make_node(OpId::attention, f.out, {q, k, v, spec.rel_bias, spec.rel_q, spec.rel_k, spec.pair_q, spec.pair_k},
            [qs, ks, vs, os, lse, saved](const Tensor& g) {
              core::AttentionGrads r = core::attention_backward(g, qs, ks, vs, os, lse, saved);
              return std::vector<Tensor>{r.dq, r.dk, r.dv, r.drel_bias, r.drel_q, r.drel_k, r.dpair_q, r.dpair_k};
            });
  return f.out;
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, int64_t q_offset, double scale) {
  return attention(q, k, v, AttentionSpec{.causal = causal, .q_offset = q_offset, .scale = scale});
}

// scores = scale q k^T + rel_bias[h, S - 1 + i - j]
//        + scale (rel_q rel_k^T)[b, h, i, S - 1 + i - j] + pair_scale pair_q pair_k^T   [B, H, T, S]
// hidden pairs (causal, mask terms) -> -inf, top-k (scores below the k-th largest of their
// row -> -inf), softmax, o = p v. A row with every key hidden is left unmasked before the
// softmax (so it stays finite) and its probabilities are then zeroed: o = 0 and no gradient,
// as in the fused kernel.
namespace {
// Scores below the k-th largest of their row (last dim) -> -inf; ties with it are kept
// (k = 0 or k >= S: unchanged). The selection is read off the values: no gradient through it.
Tensor topk_hidden(const Tensor& scores, int64_t k) {
  const int64_t S = scores.size(-1);
  if (k <= 0 || k >= S) return scores;
  std::vector<double> s = scores.to_vector<double>(), row(static_cast<size_t>(S));
  std::vector<int64_t> hide(s.size());
  for (size_t r = 0; r * size_t(S) < s.size(); ++r) {
    std::copy(s.begin() + long(r * S), s.begin() + long((r + 1) * S), row.begin());
    std::nth_element(row.begin(), row.begin() + (k - 1), row.end(), std::greater<double>());
    for (int64_t j = 0; j < S; ++j) hide[r * S + size_t(j)] = s[r * S + size_t(j)] < row[size_t(k - 1)];
  }
  return masked_fill(scores, from_vector(hide, scores.shape()), -std::numeric_limits<double>::infinity());
}
}  // namespace

Tensor attention_composite(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec) {
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.shape() == v.shape() && q.size(0) == k.size(0) &&
               q.size(3) == k.size(3) && k.size(1) > 0 && q.size(1) % k.size(1) == 0,
           "attention_composite: expected q [B, H, T, D], k and v [B, G, S, D] with G dividing H, got q ", q.shape(),
           ", k ", k.shape(), ", v ", v.shape());
  TZ_CHECK(!spec.causal || spec.q_offset >= 0, "attention_composite: q_offset must be >= 0 when causal, got ",
           spec.q_offset);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), G = k.size(1), S = k.size(2);
  Tensor kh = k, vh = v;
  if (G != H) {  // GQA: query head h reads key/value head h / (H / G)
    std::vector<int64_t> group(static_cast<size_t>(H));
    for (int64_t h = 0; h < H; ++h) group[size_t(h)] = h / (H / G);
    Tensor idx = from_vector(group, {H});
    kh = index_select(k, 1, idx);
    vh = index_select(v, 1, idx);
  }
  const double scale = spec.scale != 0 ? spec.scale : 1.0 / std::sqrt(double(D));
  Tensor scores = matmul(q, kh.transpose(-1, -2)) * scale;
  if (spec.rel_bias.defined()) {
    const Tensor& rb = spec.rel_bias;
    TZ_CHECK(rb.dim() == 2 && (rb.size(0) == H || rb.size(0) == 1) && rb.size(1) == T + S - 1,
             "attention_composite: rel_bias must be [H, T + S - 1] = [", H, ", ", T + S - 1, "] (or [1, ", T + S - 1,
             "]), got ", rb.shape());
    std::vector<int64_t> dist(static_cast<size_t>(T * S));  // entry S - 1 + i - j of each head's row
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S; ++j) dist[size_t(i * S + j)] = S - 1 + i - j;
    scores = scores + index_select(rb, 1, from_vector(dist, {T * S})).view({1, rb.size(0), T, S});
  }
  if (spec.rel_q.defined()) {  // X = rel_q rel_k^T [B, H, T, T + S - 1], read at (i, S - 1 + i - j)
    const int64_t M = T + S - 1;
    std::vector<int64_t> at(static_cast<size_t>(T * S));
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S; ++j) at[size_t(i * S + j)] = i * M + S - 1 + i - j;
    Tensor x = matmul(spec.rel_q, spec.rel_k.unsqueeze(0).transpose(-1, -2)).reshape({B, H, T * M});
    scores = scores + index_select(x, 2, from_vector(at, {T * S})).view({B, H, T, S}) * scale;
  }
  if (spec.pair_q.defined()) scores = scores + matmul(spec.pair_q, spec.pair_k.transpose(-1, -2)) * spec.pair_scale;
  if (spec.mask) spec.mask->check(B, H, S);
  const bool masked = spec.causal || (spec.mask && !spec.mask->empty());
  if (!masked) return matmul(softmax(topk_hidden(scores, spec.topk)), vh);
  // hide [B, H, T, S]: 1 where the pair is hidden; hide_live: the same in rows that keep a key.
  std::vector<int64_t> hide(static_cast<size_t>(B * H * T * S)), hide_live(hide.size());
  std::vector<uint8_t> vis(static_cast<size_t>(T * S), 1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      if (spec.mask && !spec.mask->empty()) spec.mask->fill(b, h, 0, T, 0, S, spec.q_offset, vis.data(), S);
      for (int64_t i = 0; i < T; ++i) {
        int64_t* hr = hide.data() + ((b * H + h) * T + i) * S;
        bool any = false;
        for (int64_t j = 0; j < S; ++j) {
          const bool seen = vis[size_t(i * S + j)] && !(spec.causal && j > spec.q_offset + i);
          hr[j] = !seen;
          any = any || seen;
        }
        if (any) std::copy(hr, hr + S, hide_live.data() + (hr - hide.data()));
      }
    }
  Tensor hidden = from_vector(hide, {B, H, T, S});
  Tensor p = softmax(topk_hidden(
      masked_fill(scores, from_vector(hide_live, {B, H, T, S}), -std::numeric_limits<double>::infinity()), spec.topk));
  return matmul(masked_fill(p, hidden, 0.0), vh);
}

}  // namespace tz
