// CoPE. "Contextual Position Encoding: Learning to Count What's Important", Golovneva, Wang,
// Weston & Sukhbaatar 2024, arXiv:2405.18719, §3 and the code listing in its appendix.
//
// Shapes: N layers, B batch, H heads, T queries (positions q_start..), S keys (positions
// k_start..), D head size, P = p_max the largest position.
// For query i and key j (positions, j <= i), per head:
//   g_ij = σ(q_i · k_j / sqrt(D))                        gates: does key j count for query i
//   p_ij = min(Σ_{k=j}^{i} g_ik, P)                       a fractional count, in (0, P]
//   z_i[n] = q_i · e[n],  n = 0..P                        the integer positions first [B, H, T, P + 1]
//   b_ij = z_i[⌊p_ij⌋] + (p_ij - ⌊p_ij⌋) (z_i[⌈p_ij⌉] - z_i[⌊p_ij⌋])   interpolated
//   a_ij = softmax_j(q_i · k_j / sqrt(D) + b_ij)
// so q_i · e[p_ij] is never formed as a vector per pair: one [T, D] x [D, P + 1] product and
// two gathers, as the paper computes it. With every gate 1, p_ij = i - j + 1: a learned
// relative position embedding (Shaw et al.'s relative keys, offset by one).
// As in the paper's code: the gates read the attention's own logits (scaled by 1/sqrt(D)), the
// position term is added unscaled, positions are clipped at P (keys further away, counted in
// gates, share e[P]), and e [P + 1, D] is one table per layer, shared by the heads of the
// layer (each head still counts with its own gates).
// Interface: the term depends on q and k together (the gates), and PositionScheme's
// query_score_bias already receives both (k expanded to the H query heads), so no extension
// of the hooks was needed. The gates must count only keys the query sees: the causal pairs
// j <= i by position, and the keys that MixerContext's key_padding hides get gate 0 (as the
// paper's mask.log() in the logits does); forgotten_keys, segment memory and the staircase mask
// are refused (their counts are not defined by the paper).
// Positions are explicit (q_start, k_start) and a query's count reads only keys up to it, so
// a cached decode step computes exactly the row the full forward does. The term is dense
// [B, H, T, S]: the attention takes its composite path.
// Deviations: e starts N(0, 0.02) (the paper's code starts it at 0): a zero table leaves the
// gates without gradient until e moves, and hides the term from the conformance checks.
// Keys after the query (a bidirectional model) would get p = 0: the factory refuses
// non-causal models, since the paper defines CoPE for causal attention.
#pragma once

#include "core/random.h"
#include "nn/mixer.h"

namespace tz::nn {

struct CoPEOptions {
  int64_t head_dim = 0;  // D
  int64_t layers = 1;    // N: a table per layer
  int64_t max_pos = 64;  // P
  double init_std = 0.02;
};

class CoPEPositions : public PositionScheme {
 public:
  CoPEPositions(const CoPEOptions& options, Generator& gen);
  // b [B, H, T, S] for q [B, H, T, D] at q_start.., k [B, H, S, D] at k_start.. (layer ctx->layer).
  Tensor query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                          const MixerContext* ctx = nullptr) const override;
  bool biases_with_queries() const override { return true; }
  std::string describe() const override;

  // The fractional positions p [B, H, T, S] (clipped at P) of the gates g [B, H, T, S]
  // (0 where the key is hidden): the sum of g over keys j..S-1 of each row.
  Tensor positions(const Tensor& gates) const;
  // The gates σ(q k^T / sqrt(D)) [B, H, T, S], 0 on hidden pairs (key after the query, or
  // key_padding 0 in `ctx`).
  Tensor gates(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start, const MixerContext* ctx) const;
  // b [B, H, T, S] from q [B, H, T, D] and positions p: q·e[n] at integers, interpolated.
  Tensor interpolate(const Tensor& q, const Tensor& p, int64_t layer) const;
  Tensor table(int64_t layer) const;  // e [P + 1, D]

  CoPEOptions options;
  Tensor e;                     // [N, P + 1, D]
  double force_gate_logit = 0;  // != 0: every visible gate is σ(this) (tests: all gates 1)
};

}  // namespace tz::nn
