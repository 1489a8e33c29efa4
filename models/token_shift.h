// Token shift (RWKV's time-mix idea, RWKV-LM, Zenodo 10.5281/zenodo.5196578; x-transformers'
// shift_tokens): before a sublayer's function, the channels of its normed input u [B, T, C]
// are split into s+1 chunks and chunk c is delayed c steps (zeros before position 0):
//   u'_t[c] = u_{t-c}[c]      (shift 0 = identity; chunk 0 takes the remainder channels)
// The step form keeps the last s inputs, so decoding matches the parallel form.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "nn/config.h"

namespace tz::models {

inline const nn::Key<std::vector<int64_t>> kTokenShift{
    "token_shift", {0}, "token-shift amount s, one for all blocks or one per block"};

// Token shift of u [B, T, C] by s. `hist` [B, s, C] holds the s inputs before u (undefined =
// zeros, the start); when given it is replaced by the last s inputs.
Tensor token_shift(const Tensor& u, int64_t s, Tensor* hist = nullptr);

// The shift of each of `blocks` blocks from the config (one amount for all, or one per block),
// checked against the width C.
std::vector<int64_t> token_shifts(const nn::Config& config, size_t blocks, int64_t dim);

}  // namespace tz::models
