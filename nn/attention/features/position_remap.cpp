// Position remaps as attention features (position_remap.h).
#include "nn/attention/features/position_remap.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "nn/attention/attention.h"
#include "nn/position/rope.h"

namespace tz::nn {

std::vector<int64_t> remap_key_positions(const RemapRule& rule, int64_t S, int64_t start, int64_t T, bool cached) {
  const int64_t first = cached ? std::min(rule.front(), start) : 0;  // the kept first positions 0..first-1
  TZ_CHECK(S >= first + T, "position remap: ", S, " keys cannot hold ", first, " first positions and ", T, " new ones");
  std::vector<int64_t> pos(static_cast<size_t>(S));
  for (int64_t j = 0; j < first; ++j) pos[size_t(j)] = j;
  for (int64_t j = first; j < S; ++j) pos[size_t(j)] = start + T - (S - j);  // ends at start + T - 1
  return pos;
}

Tensor rotate_by_offsets(const Tensor& x, const std::vector<int64_t>& delta, const RotaryPositions& rope) {
  const int64_t n = x.size(2), D = x.size(3), K = D / 2;
  TZ_CHECK(int64_t(delta.size()) == n, "position remap: ", delta.size(), " offsets for ", n, " rows");
  const Tensor omega = rope.angles(1, 1, D);  // [1, K]: ω_k = angles(1)
  Tensor a = empty({n, K}, DType::f64);
  double* ap = a.data<double>();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < K; ++k) ap[r * K + k] = double(delta[size_t(r)]) * omega.at({0, k});
  return rotate_by_angles(x, a, 1.0);  // the scheme's magnitude is already on x
}

void PositionRemap::init_state(const Attention& a, KVState& s, int64_t batch, DType dtype) const {
  if (!rule_->evicts() || a.cross()) return;         // the default buffers, of the state's capacity
  const int64_t n = rule_->front() + rule_->back();  // bounded whatever the length
  s.k = zeros({batch, a.layout.k_heads, n, a.layout.Dk}, dtype);
  s.v = zeros({batch, a.layout.G, n, a.layout.D}, dtype);
}

void PositionRemap::check_call(const Attention& a, const AttentionCall& c) const {
  const MixerContext& ctx = c.ctx;
  TZ_CHECK(!a.cross(), "Attention: '", key_, "' remaps positions of self-attention; cross-attention has none");
  TZ_CHECK(!ctx.memory.defined() && ctx.segment == 0, "Attention: '", key_,
           "' takes no segment memory (mem_len) or staircase mask: its keys have their own positions");
  TZ_CHECK(!c.state || (!ctx.key_padding.defined() && !ctx.forgotten_keys.defined()), "Attention: '", key_,
           "' drops keys from the cache, so key_padding and forgotten_keys have no columns to hide while decoding");
  const PositionScheme* p = ctx.pos;
  if (!p) return;
  TZ_CHECK(!p->biases_scores() && !p->biases_with_queries(), "Attention: '", key_, "' and the position scheme ",
           p->describe(), " conflict: its score terms are indexed by cache column, not by the remapped position");
  if (!p->rotates()) return;
  const auto* r = dynamic_cast<const RotaryPositions*>(p);
  TZ_CHECK(r && r->linear_in_position(), "Attention: '", key_, "' needs a rotation whose angles are linear in the ",
           "position (rope, pi_interpolation, ntk_aware_rope, yarn), got ", p->describe());
}

void PositionRemap::cache(const Attention&, KVState& s, Tensor& k, Tensor& v, const AttentionCall& c) const {
  const int64_t T = k.size(2), held = s.keys, S = held + T;
  TZ_CHECK(c.x.size(0) == s.k.size(0), "Attention: state made for batch ", s.k.size(0), ", input has batch ",
           c.x.size(0));
  if (!rule_->evicts()) {  // every key: appended in place, as the default cache does
    TZ_CHECK(S <= s.k.size(2), "Attention: KV cache full (", held, " + ", T, " > capacity ", s.k.size(2), ")");
    core::copy_(s.k.narrow(2, held, T), k);
    core::copy_(s.v.narrow(2, held, T), v);
    s.keys = S;
    k = s.k.narrow(2, 0, S);
    v = s.v.narrow(2, 0, S);
    return;
  }
  // This call sees the held keys and its own; the state keeps the first positions (< front)
  // and the last `back` ones, which are the only ones a later query can see.
  Tensor all_k = held > 0 ? cat({s.k.narrow(2, 0, held), k}, 2) : k;
  Tensor all_v = held > 0 ? cat({s.v.narrow(2, 0, held), v}, 2) : v;
  const std::vector<int64_t> pos = remap_key_positions(*rule_, S, c.ctx.start, T, true);
  const int64_t end = c.ctx.start + T;  // the next position
  int64_t first = 0, last = 0;
  while (first < S && pos[size_t(first)] < rule_->front()) ++first;
  while (last < S - first && pos[size_t(S - 1 - last)] >= end - rule_->back()) ++last;
  Tensor keep_k = cat({all_k.narrow(2, 0, first), all_k.narrow(2, S - last, last)}, 2);
  Tensor keep_v = cat({all_v.narrow(2, 0, first), all_v.narrow(2, S - last, last)}, 2);
  core::copy_(s.k.narrow(2, 0, first + last), keep_k);
  core::copy_(s.v.narrow(2, 0, first + last), keep_v);
  s.keys = first + last;
  k = all_k;
  v = all_v;
}

void PositionRemap::sdpa_spec(const Attention& a, SdpaSpec& s, const Tensor& q, const Tensor& k,
                              const AttentionCall& c) const {
  TZ_CHECK(s.q_offset == c.q_offset, "Attention: '", key_,
           "' places every key at a position; leading keys (attn_num_mem_kv) have none");
  const int64_t T = q.size(2), S = k.size(2), P = c.ctx.start, H = q.size(1);
  const std::vector<int64_t> pos = remap_key_positions(*rule_, S, P, T, c.state != nullptr);
  const RemapRule& r = *rule_;
  std::vector<int64_t> hidden(static_cast<size_t>(T * S)), far(static_cast<size_t>(T * S));
  bool causal_only = true, any_far = false;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < S; ++j) {
      const int64_t i = P + t, p = pos[size_t(j)];
      const bool see = p <= i && r.visible(i, p);
      hidden[size_t(t * S + j)] = !see;
      far[size_t(t * S + j)] = see && r.far(i, p);
      any_far = any_far || far[size_t(t * S + j)];
      causal_only = causal_only && see == (j <= s.q_offset + t);
    }
  const auto* rope = dynamic_cast<const RotaryPositions*>(c.ctx.pos);
  const bool remaps = any_far && rope;  // without a rotation, positions never reach the scores
  if (causal_only && !remaps) return;   // the plain causal attention: the core's own path
  Tensor bias = zeros({1, H, T, S}, q.dtype());
  if (remaps) {  // far pairs: the score of q at far_query(i) and k at far_key(j), minus the near one
    std::vector<int64_t> dq(static_cast<size_t>(T)), dk(static_cast<size_t>(S));
    for (int64_t t = 0; t < T; ++t) dq[size_t(t)] = r.far_query(P + t) - (P + t);
    for (int64_t j = 0; j < S; ++j) dk[size_t(j)] = r.far_key(pos[size_t(j)]) - pos[size_t(j)];
    const double scale = s.scale != 0 ? s.scale : 1.0 / std::sqrt(double(q.size(3)));
    Tensor kn = expand_kv_heads(k, H), kf = expand_kv_heads(rotate_by_offsets(k, dk, *rope), H);
    Tensor qf = rotate_by_offsets(q, dq, *rope);
    Tensor diff = (matmul(qf, kf.transpose(-1, -2)) - matmul(q, kn.transpose(-1, -2))) * scale;
    bias = diff * from_vector(far, {T, S}).to(q.dtype());
  }
  s.causal = false;  // the hidden pairs include the causal ones
  s.score_bias = masked_fill(bias, from_vector(hidden, {T, S}), -std::numeric_limits<double>::infinity());
}

}  // namespace tz::nn
