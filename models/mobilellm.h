// MobileLLM (Liu et al. 2024, "MobileLLM: Optimizing Sub-billion Parameter Language Models for
// On-Device Use Cases", arXiv:2402.14905): a deep-and-thin decoder (30 blocks at 125M), SwiGLU
// FFNs, grouped-query attention, the input embedding shared with the output head, and, in
// MobileLLM-LS, immediate block-wise weight sharing: each of the `depth` blocks runs
// `block_repeat` times back to back,
//   h ← block_l(block_l(h))            for l = 1..depth   (block_repeat = 2)
// so the model computes as deeply as depth · block_repeat blocks while holding the
// parameters of depth; the repeat reuses the weights already in cache, which is why the paper
// prefers it to repeating the whole stack. Each application keeps its own decoding state
// (its own KV cache). The other pieces are the zoo's own keys (ffn glu_variants with
// ffn_glu swiglu, attn_kv_heads, tie_weights).
#pragma once

#include <cstdint>
#include <vector>

#include "nn/config.h"

namespace tz::models {

inline const nn::Key<int64_t> kBlockRepeat{
    "block_repeat", 1, "MobileLLM-LS: each block runs this many times back to back with the same weights (≥ 1)"};

// The block index of every application: block_repeat copies of 0, then of 1, ... Checks the
// key, and refuses it with share_layers / act (their single block already repeats).
std::vector<int64_t> repeat_schedule(const nn::Config& config, int64_t blocks, bool shared);

}  // namespace tz::models
