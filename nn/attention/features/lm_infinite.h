// LM-Infinite. "LM-Infinite: Zero-Shot Extreme Length Generalization for Large Language
// Models" (first titled "Simple On-the-Fly Length Generalization"), Han et al. 2023,
// arXiv:2308.16137 (NAACL 2024).
//
// Shapes: B batch, H heads, T queries, S keys, D head size; n_global, L_local, L_pretrain.
// Two changes to a model trained at L_pretrain, no training:
//   Λ-shaped mask   query i attends the first n_global tokens and the last L_local ones:
//                   visible(i, j) = j < n_global  or  i - j < L_local
//   distance limit  a relative distance above L_pretrain is replaced by L_pretrain:
//                   d_ij = min(i - j, L_pretrain)
// so no query attends more keys, nor at a larger distance, than in pretraining. A position
// remap (position_remap.h: why an attention feature, how the regimes merge): far(i, j) =
// i - j > L_pretrain, rotated with the query at L_pretrain and the key at 0 (as the paper's
// code rotates its global branch), front = n_global, back = L_local. The decoding cache keeps
// only the n_global + L_local keys any later query can see, so memory is bounded and per-token
// cost does not grow with the position.
// Keys: attn_lambda_local = L_local (> 0 turns it on), attn_lambda_global = n_global (10),
// attn_lambda_ceiling = L_pretrain (0 = L_local, the paper's setting L_local = L_pretrain).
// Deviations: not done, the paper's optional top-k middle tokens (keys outside the Λ picked
// by their scores in the upper layers): an option of its evaluation, not of the mask.
#pragma once

#include "nn/attention/features/position_remap.h"

namespace tz::nn {

class LambdaRule : public RemapRule {
 public:
  LambdaRule(int64_t n_global, int64_t local, int64_t ceiling) : n_global(n_global), local(local), ceiling(ceiling) {}
  bool visible(int64_t i, int64_t j) const override { return j < n_global || i - j < local; }
  bool far(int64_t i, int64_t j) const override { return i - j > ceiling; }
  int64_t far_query(int64_t) const override { return ceiling; }
  int64_t far_key(int64_t) const override { return 0; }
  int64_t front() const override { return n_global; }
  int64_t back() const override { return local; }
  int64_t n_global, local, ceiling;
};

}  // namespace tz::nn
