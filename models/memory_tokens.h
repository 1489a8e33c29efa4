// Memory tokens (Burtsev et al. 2020, "Memory Transformer", arXiv:2006.11527; x-transformers'
// num_memory_tokens), without the MemCtrl controller sublayer. Shapes: B batch, T real
// positions, m memory tokens, C width, V vocabulary.
//
//   h = [mem ; drop_emb(tok_emb[ids] + pos.embed(0..T-1))]     mem [m, C] learned, per batch row
//   h = blocks(h)                                              [B, m + T, C]
//   logits = head(h[:, m:])                                    [B, T, V]  (memory outputs stripped)
//
// In the causal decoder the memory is a prefix: every real position sees it, a memory token
// sees only the memory before it. Positions: the real tokens keep their absolute embedding
// positions 0..T-1 (so m = 0 is the plain LM, bit for bit) and the memory gets none; inside
// attention (RoPE, ALiBi, T5, Transformer-XL, ...) the memory sits at positions 0..m-1 and real
// token t at m + t, in the full forward and in decoding alike, so relative schemes see the
// real tokens at unchanged distances. Refused: a scheme with a bounded position table that
// acts inside attention (TUPE: m + context positions do not fit), and the shared block
// (share_layers / act), whose per-step signal P^t covers the real positions only.
// Decoding: the state's length counts real tokens; the first call on a fresh state runs the
// memory before its tokens, and the attention layers cache it like any prefix (their states
// hold m more positions, so LM::make_state gives them capacity + m).
#pragma once

#include "core/tensor.h"
#include "nn/config.h"
#include "nn/mixer.h"

namespace tz::models {

inline const nn::Key<int64_t> kNumMemoryTokens{
    "num_memory_tokens", 0,
    "Memory Transformer: m learned [mem] tokens before every sequence, stripped from the logits"};

// Reads num_memory_tokens (checked >= 0) and refuses the combinations it cannot honour,
// naming both keys: a bounded scheme inside attention, the shared block.
int64_t read_memory_tokens(const nn::Config& config, const nn::PositionScheme& pos, bool shared_block);

// [B, m + T, C]: the memory mem [m, C] before every row of h [B, T, C].
Tensor prepend_memory(const Tensor& mem, const Tensor& h);

// A per-key mask [B, T] (forgotten_keys) widened over the memory: [B, m + T], memory columns 0.
Tensor pad_memory_keys(const Tensor& keys, int64_t m);

}  // namespace tz::models
