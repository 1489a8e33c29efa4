// Position remaps: the one mechanism behind the training-free long-input decoders
// streaming_llm (arXiv:2309.17453), lm_infinite (arXiv:2308.16137) and selfextend
// (arXiv:2401.01325). Each is an attention feature given by a RemapRule over absolute
// positions, query i and key j <= i:
//   visible(i, j)   which keys query i attends to, besides causality (a Λ-shaped mask)
//   far(i, j)       the pairs of the second position regime; the others keep i - j
//   far_query(i), far_key(j)
//                   the positions a far pair is rotated at: its relative position is
//                   far_query(i) - far_key(j) (sinks: the cache slot; LM-Infinite: the
//                   ceiling; SelfExtend: the grouped positions)
//   front, back     the keys a decoding cache keeps: positions < front and the last back
// With RoPE-like schemes (RotaryPositions) the score of a pair is
//   s_ij = scale q_i^T R(d_ij) k_j,   d_ij = i - j (near) or far_query(i) - far_key(j) (far),
// the two regimes merged before the softmax, hidden pairs at -inf.
//
// Why an attention feature and not a position scheme: the three change which keys a query
// sees (a mask) and, for two of them, which keys a decoding cache keeps (eviction), and a
// position scheme does neither (masks travel as data in the attention layer, the cache is
// the layer's KVState). A position scheme also sees q and k only one side at a time (rotate)
// or adds a term to the core's q.k, and the far regime needs q rotated at another position
// paired with k rotated at another position. The feature hooks two stages: `cache`
// (replaced: the bounded cache; a stage added to the pipeline for these ids, as general as
// the catalogue's "KV cache with pluggable policies") and the core's spec (the mask and the
// far regime as a score term, from the q and k the spec hook now receives). Nothing in the
// attention core or the position schemes names these ids, and every rotary scheme with
// linear angles (rope, pi_interpolation, ntk_aware_rope, yarn) works under every remap.
//
// How the two regimes are computed. The core rotates q and k at their absolute positions
// (keys are cached rotated, as for any RoPE cache) and computes the near scores. Where a pair
// is far, the feature adds the term
//   scale (R(far_query(i) - i) q_i)^T (R(far_key(j) - j) k_j) - scale q_i^T k_j
// (a dense score_bias, composite path), so the merged score is the far one; hidden pairs get
// -inf. This needs angles(m) = m ω (linear_in_position): a rotation by δ more positions is a
// rotation by δ ω, for every rotary scheme but dynamic NTK (refused). When a call has no
// far pair and hides exactly the causal pairs (short inputs, selfextend with w_n >= L), the
// spec is left alone: the output is the base model's, bit for bit, on the fused kernel.
//
// Deviation (streaming_llm): the paper caches keys un-rotated and rotates them by their
// cache slot at every step. The scores depend on slot differences only, which equal i - j for
// the window keys and min(i, s + w - 1) - j for the sinks: this is what the rule gives, with
// keys cached once, rotated (no re-rotation of the whole cache per token).
//
// Refused (named in the error): position schemes that bias scores by column (alibi,
// t5_rel_bias, tupe, txl_rel_pos: their tables index cache columns, which eviction breaks)
// or rotate otherwise (xpos, dynamic NTK), segment memory, leading keys (persistent memory:
// no position), cross-attention, and key masks while decoding with a cache. Absolute schemes
// (learned_abs_pe, sinusoidal_pe) add positions to the embeddings: there only the mask and
// the cache apply.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/attention/feature.h"

namespace tz::nn {

class RotaryPositions;

// A remap over absolute positions (see above); j <= i in every call.
class RemapRule {
 public:
  static constexpr int64_t kAll = int64_t(1) << 60;  // front = kAll: the cache keeps every key
  virtual ~RemapRule() = default;
  virtual bool visible(int64_t i, int64_t j) const = 0;
  virtual bool far(int64_t i, int64_t j) const = 0;
  virtual int64_t far_query(int64_t i) const = 0;
  virtual int64_t far_key(int64_t j) const = 0;
  virtual int64_t front() const = 0;
  virtual int64_t back() const = 0;
  // The relative position the scores of a visible pair use: far_query(i) - far_key(j) for a
  // far pair, i - j otherwise.
  int64_t distance(int64_t i, int64_t j) const { return far(i, j) ? far_query(i) - far_key(j) : i - j; }
  bool evicts() const { return front() < kAll; }
};

// The positions of the S keys a call attends to, x's T queries at start..start+T-1: with a
// cache, min(front, start) kept first positions, then contiguous positions ending at
// start + T - 1; without, start..start+S-1.
std::vector<int64_t> remap_key_positions(const RemapRule& rule, int64_t S, int64_t start, int64_t T, bool cached);

// x [B, n_heads, n, D] rotated by delta[r] more positions per row r (frequencies ω = the
// scheme's angles(1)): R(delta ω) x. The scheme must be linear in position.
Tensor rotate_by_offsets(const Tensor& x, const std::vector<int64_t>& delta, const RotaryPositions& rope);

// The attention feature of a rule: hooks the cache stage (replaces it) and the core's spec.
class PositionRemap : public AttentionFeature {
 public:
  PositionRemap(std::string key, std::string describe, std::shared_ptr<const RemapRule> rule)
      : key_(std::move(key)), describe_(std::move(describe)), rule_(std::move(rule)) {}
  std::string key() const override { return key_; }
  std::vector<Hook> hooks() const override { return {{Stage::cache, true}}; }
  std::string describe() const override { return describe_; }
  void init_state(const Attention& a, KVState& s, int64_t batch, DType dtype) const override;
  void check_call(const Attention& a, const AttentionCall& c) const override;
  void cache(const Attention& a, KVState& s, Tensor& k, Tensor& v, const AttentionCall& c) const override;
  void sdpa_spec(const Attention& a, SdpaSpec& s, const Tensor& q, const Tensor& k,
                 const AttentionCall& c) const override;
  const RemapRule& rule() const { return *rule_; }

 private:
  std::string key_, describe_;
  std::shared_ptr<const RemapRule> rule_;
};

}  // namespace tz::nn
