// RealFormer: residual attention scores. "RealFormer: Transformer Likes Residual Attention",
// He et al. 2020, arXiv:2012.11747.
//   S^l = Q^l K^{lT} / sqrt(D) + S^{l-1};  A^l = softmax(S^l + M);  S^l goes on to layer l+1
// through MixerContext::carry. The mask comes after the sum, so S^l is unmasked.
// Stage: scores (a transform; needs the materialised scores). Decoding: the new query's row
// of S^l needs only the same row of S^{l-1}, computed by the previous layer in the same call.
#pragma once

#include "core/tensor.h"
#include "nn/mixer.h"

namespace tz::nn {

// Adds the previous layer's scores held in ctx.carry (if any) and stores the sum there for
// the next layer. Throws when the shapes differ (layers with different heads).
Tensor residual_scores(const Tensor& raw, const MixerContext& ctx);
// The carry key RealFormer uses.
inline const char* kResidualScoresKey = "attn_residual_scores";

}  // namespace tz::nn
