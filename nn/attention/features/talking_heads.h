// Talking-Heads Attention. Shazeer et al. 2020, arXiv:2003.02436.
//   L'_{h'} = sum_h P^l_{h'h} L_h  on the logits before the mask and softmax,
//   W'_{h''} = sum_{h'} P^w_{h''h'} W_{h'}  on the weights after it,
// P^l, P^w [H, H] learned (parameters pre_mix, post_mix), initialised to the identity (plain
// attention). Stages: scores and probs (transforms; need the materialised scores). Masked
// weights are 0 in every head, so the post-mix keeps the causal mask.
#pragma once

#include "core/tensor.h"

namespace tz::nn {

// p [H, H] mixes s [B, H, T, S] across heads: out_h' = sum_h p[h', h] s_h.
Tensor mix_heads(const Tensor& p, const Tensor& s);

}  // namespace tz::nn
