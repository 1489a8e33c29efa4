// Explicit sparse attention (attn_sparse_topk). "Explicit Sparse Transformer: Concentrated
// Attention Through Explicit Selection", Zhao et al. 2019, arXiv:1912.11637.
// Per query row keep the k largest (allowed) logits, set the rest to -inf, then softmax.
// Deviation: ties with the k-th value are all kept (a measure-zero event for real scores).
// The attention core does the selection (SdpaSpec::topk): on the fused path a first tiled
// pass finds each row's k-th largest score and the second hides the scores below it, so
// memory stays linear in T; on the composite path topk_mask below (the reference). Stage:
// normaliser (softmax after the core's selection; it excludes another normaliser).
#pragma once

#include "core/tensor.h"

namespace tz::nn {

// Scores with all but the k largest entries of each row (last dim) set to -inf.
Tensor topk_mask(const Tensor& scores, int64_t k);

}  // namespace tz::nn
