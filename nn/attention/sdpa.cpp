// The attention core (math and shapes in sdpa.h).
#include "nn/attention/sdpa.h"

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "core/attention.h"
#include "core/creation.h"
#include "core/kernels/attention_mask.h"
#include "nn/attention/features/topk.h"

namespace tz::nn {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

void check_shapes(const Tensor& q, const Tensor& k, const Tensor& v) {
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: expected q, k, v of rank 4 [B, H, T, D], got ",
           q.shape(), ", ", k.shape(), ", ", v.shape());
  TZ_CHECK(k.size(0) == q.size(0) && v.size(0) == q.size(0) && k.size(1) == v.size(1) && k.size(2) == v.size(2) &&
               q.size(3) == k.size(3) && k.size(1) > 0 && q.size(1) % k.size(1) == 0,
           "attention: shape mismatch, q ", q.shape(), " k ", k.shape(), " v ", v.shape(),
           " (k, v need the same heads G dividing H, and q, k the same head size)");
}

// The hidden pairs of a key mask, as 1 = hidden: key_padding [B, 1, 1, S] (hidden where 0),
// forgotten keys [B, 1, T, S] (hidden where forgotten and the query comes later).
Tensor padding_hidden(const Tensor& keep) {
  std::vector<int64_t> m = keep.to(DType::i64).contiguous().to_vector<int64_t>();
  for (int64_t& x : m) x = x == 0;
  return from_vector(m, {keep.size(0), 1, 1, keep.size(1)});
}

Tensor forgotten_hidden(const Tensor& forgotten, int64_t T, int64_t q_offset) {
  const int64_t B = forgotten.size(0), S = forgotten.size(1);
  std::vector<int64_t> f = forgotten.to(DType::i64).contiguous().to_vector<int64_t>();
  std::vector<int64_t> m(size_t(B * T * S), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S && j < q_offset + i; ++j) m[size_t((b * T + i) * S + j)] = f[size_t(b * S + j)] != 0;
  return from_vector(m, {B, 1, T, S});
}

// THE switch between the two paths: what the fused op (tz::attention with an AttentionSpec)
// takes. It reads causal masks, key padding, forgotten keys, relative bias tables, relative
// keys, pair products, top-k and k, v of G heads tile by tile (core/kernels/attention.h); a
// dense query-dependent term, stage hooks, a requested probability matrix or q, k of another
// head size than v need the composite path.
bool fused_supports(const Tensor& q, const Tensor& v, const SdpaSpec& s) {
  return !s.materialise && !s.score_bias.defined() && q.size(3) == v.size(3) && !(s.causal && s.q_offset < 0);
}

// The fused op's spec: the masks become mask terms owning a copy of their flags (they live as
// long as the autograd graph needs them).
AttentionSpec fused_spec(const SdpaSpec& s) {
  AttentionSpec f{.causal = s.causal,
                  .q_offset = s.q_offset,
                  .scale = s.scale,
                  .rel_bias = s.rel_bias,
                  .rel_q = s.rel_q,
                  .rel_k = s.rel_k,
                  .pair_q = s.pair_q,
                  .pair_k = s.pair_k,
                  .pair_scale = s.pair_scale,
                  .topk = s.topk};
  if (!s.key_padding.defined() && !s.forgotten_keys.defined() && s.segment == 0) return f;
  auto mask = std::make_shared<kernels::AttentionMask>();
  if (s.segment > 0) mask->terms.push_back(std::make_shared<kernels::SegmentMask>(s.segment, s.segment_memory));
  if (s.key_padding.defined()) mask->terms.push_back(core::key_padding_mask(s.key_padding));
  if (s.forgotten_keys.defined()) mask->terms.push_back(core::forgotten_keys_mask(s.forgotten_keys));
  f.mask = mask;
  return f;
}
}  // namespace

Tensor ScoreStages::normalise(const Tensor& s) const { return softmax(s); }

Tensor relative_bias_dense(const Tensor& table, int64_t T, int64_t S) {
  TZ_CHECK(table.dim() == 2 && table.size(1) == T + S - 1,
           "attention: relative bias table must be [H, T + S - 1] = [H, ", T + S - 1, "], got ", table.shape());
  std::vector<int64_t> idx(size_t(T * S));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) idx[size_t(i * S + j)] = S - 1 + i - j;
  return index_select(table, 1, from_vector(idx)).reshape({table.size(0), T, S});
}

Tensor relative_keys_dense(const Tensor& rel_q, const Tensor& rel_k, int64_t S) {
  const int64_t B = rel_q.size(0), H = rel_q.size(1), T = rel_q.size(2), M = T + S - 1;
  TZ_CHECK(rel_k.dim() == 3 && rel_k.size(0) == H && rel_k.size(1) == M && rel_k.size(2) == rel_q.size(3),
           "attention: rel_k must be [H, T + S - 1, Dr] = [", H, ", ", M, ", ", rel_q.size(3), "], got ",
           rel_k.shape());
  std::vector<int64_t> at(size_t(T * S));  // (i, j) reads column S - 1 + i - j of row i
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) at[size_t(i * S + j)] = i * M + S - 1 + i - j;
  Tensor x = matmul(rel_q, rel_k.unsqueeze(0).transpose(-1, -2)).reshape({B, H, T * M});
  return index_select(x, 2, from_vector(at)).reshape({B, H, T, S});
}

Tensor expand_kv_heads(const Tensor& k, int64_t H) {
  const int64_t G = k.size(1);
  if (G == H) return k;
  std::vector<int64_t> group(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) group[size_t(h)] = h * G / H;
  return index_select(k, 1, from_vector(group));
}

Tensor key_columns(const Tensor& mask, int64_t first, int64_t S, const char* what) {
  if (!mask.defined()) return mask;
  TZ_CHECK(mask.dim() == 2 && (mask.size(1) == S || mask.size(1) >= first + S), "attention: ", what, " must be [B, ", S,
           "] (the keys attended) or [B, >= ", first + S, "] (the whole sequence), got ", mask.shape());
  return mask.size(1) == S ? mask : mask.narrow(1, first, S);
}

Tensor sdpa_composite(const Tensor& q, const Tensor& k_in, const Tensor& v_in, const SdpaSpec& spec,
                      const ScoreStages* stages, Tensor* probs) {
  check_shapes(q, k_in, v_in);
  static const ScoreStages plain;
  const ScoreStages& st = stages ? *stages : plain;
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), S = k_in.size(2);
  Tensor k = expand_kv_heads(k_in, H), v = expand_kv_heads(v_in, H);
  const double scale = spec.scale != 0 ? spec.scale : 1.0 / std::sqrt(double(q.size(3)));
  Tensor scores = matmul(q, k.transpose(-1, -2)) * scale;
  Tensor bias;  // [1 | B, H, T, S]: the relative table and the score terms read densely, then the dense term
  auto add = [&bias](const Tensor& t) { bias = bias.defined() ? bias + t : t; };
  if (spec.rel_bias.defined()) add(relative_bias_dense(spec.rel_bias, T, S).unsqueeze(0));
  if (spec.rel_q.defined()) add(relative_keys_dense(spec.rel_q, spec.rel_k, S) * scale);
  if (spec.pair_q.defined()) add(matmul(spec.pair_q, spec.pair_k.transpose(-1, -2)) * spec.pair_scale);
  if (spec.score_bias.defined()) add(spec.score_bias);
  if (bias.defined()) scores = scores + bias;
  scores = st.scores(scores);
  if (spec.causal) scores = masked_fill(scores, triu(ones({T, S}, DType::i64), spec.q_offset + 1), -kInf);
  if (spec.key_padding.defined()) {
    TZ_CHECK((spec.key_padding.shape() == Shape{B, S}), "attention: key padding must be [", B, ", ", S, "], got ",
             spec.key_padding.shape());
    scores = masked_fill(scores, padding_hidden(spec.key_padding), -kInf);
  }
  if (spec.forgotten_keys.defined()) {
    TZ_CHECK((spec.forgotten_keys.shape() == Shape{B, S}), "attention: forgotten keys must be [", B, ", ", S, "], got ",
             spec.forgotten_keys.shape());
    scores = masked_fill(scores, forgotten_hidden(spec.forgotten_keys, T, spec.q_offset), -kInf);
  }
  if (spec.segment > 0) {
    const kernels::SegmentMask staircase(spec.segment, spec.segment_memory);
    std::vector<int64_t> hidden(size_t(T * S));
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S; ++j) hidden[size_t(i * S + j)] = j < staircase.first_key(spec.q_offset + i);
    scores = masked_fill(scores, from_vector(hidden, {T, S}), -kInf);
  }
  if (spec.topk > 0) scores = topk_mask(scores, spec.topk);
  Tensor p = st.probs(st.normalise(scores));
  if (probs) *probs = p;
  return matmul(p, v);
}

Tensor sdpa(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaSpec& spec, const ScoreStages* stages,
            Tensor* probs) {
  check_shapes(q, k, v);
  if (probs || !fused_supports(q, v, spec)) return sdpa_composite(q, k, v, spec, stages, probs);
  return tz::attention(q, k, v, fused_spec(spec));
}

Tensor scaled_dot_product_attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                        int64_t q_offset, const Tensor& score_bias, double scale) {
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && k.size(1) == q.size(1),
           "attention: expected q, k, v [B, H, T, D] with "
           "the same heads, got ",
           q.shape(), ", ", k.shape());
  return sdpa_composite(q, k, v, {.scale = scale, .causal = causal, .q_offset = q_offset, .score_bias = score_bias});
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, int64_t q_offset,
                                    const Tensor& score_bias, double scale) {
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && k.size(1) == q.size(1),
           "attention: expected q, k, v [B, H, T, D] with "
           "the same heads, got ",
           q.shape(), ", ", k.shape());
  return sdpa(q, k, v, {.scale = scale, .causal = causal, .q_offset = q_offset, .score_bias = score_bias});
}

}  // namespace tz::nn
