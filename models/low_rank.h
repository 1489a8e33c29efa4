// Low-Rank Transformer (Winata, Cahyawijaya, Lin, Liu & Fung 2020, "Lightweight and
// Efficient End-to-End Speech Recognition Using Low-Rank Transformer", arXiv:1910.13923,
// ICASSP 2020).
//
// Every linear layer of the blocks is factorised, W ≈ V U of rank r (the paper's "linear
// encoder-decoder", LED: an encoder U to r units, a decoder V back):
//   y = (x U^T) V^T + b        x [B, T, d_in], U [r, d_in], V [d_out, r], y [B, T, d_out]
// which costs r (d_in + d_out) weights and multiply-adds per token instead of d_in d_out, a
// saving whenever r < d_in d_out / (d_in + d_out). r ≥ min(d_in, d_out) can represent any
// dense W; a smaller r keeps at best the r leading singular directions (Eckart–Young).
//
// The `linear_rank` key (0: dense) applies it to every nn::Linear built inside the LM's
// blocks (nn/low_rank.h): the attention's fused q|k|v projection [C → 3C] and its output
// projection [C → C], the FFN's fc [C → F] and proj [F → C] (gated: gate, up, proj), and
// any other Linear a mixer, FFN or residual kind owns (a GRU gate, PanGu-π's shortcuts). The
// token embedding, the head (tied or not) and the position scheme stay dense, as in the
// paper, which factorises the attention and FFN layers. One rank for all layers, also where
// r (d_in + d_out) ≥ d_in d_out: the parameter count is then one formula of the shapes.
//
// Deviations: the paper trains an ASR encoder-decoder; here the causal LM (and any block
// the LM builds). The factors are drawn where W would have been, so later draws shift; an
// `init` other than gpt2 redraws only dense weights and does not reach the factors. Code
// that reads a block's W directly (attention over segment memory, quantized export)
// refuses a factored layer with an error.
#pragma once

#include "nn/config.h"

namespace tz::models {

inline const nn::Key<int64_t> kLinearRank{
    "linear_rank", 0, "Low-Rank Transformer: rank r of W = V U in every Linear of the blocks (0: dense)"};

// The checked `linear_rank` (≥ 0).
int64_t read_linear_rank(const nn::Config& config);

}  // namespace tz::models
