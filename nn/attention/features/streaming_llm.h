// StreamingLLM. "Efficient Streaming Language Models with Attention Sinks", Xiao et al. 2023,
// arXiv:2309.17453 (ICLR 2024).
//
// Shapes: B batch, H heads, T queries of a call, S keys it sees, D head size; s sinks, w window.
// The KV cache keeps the first s tokens (the attention sinks: the initial tokens, to which a
// trained LM sends the attention it does not need elsewhere) and the w most recent tokens; the
// middle is evicted, so the cache never holds more than s + w keys [B, G, s + w, D]:
//   visible(i, j) = j < s  or  i - j < w                  (i's own key among the w recent)
// Positions are those inside the cache (rolling): the query sits at its slot, min(i, s + w - 1),
// the sinks at slots 0..s-1 and the recent keys just before the query, so with RoPE
//   d_ij = i - j                     for the recent keys (far(i, j) = i - j >= w: false),
//   d_ij = min(i, s + w - 1) - j     for the sinks,
// and no distance ever exceeds s + w - 1, the longest a model trained at L >= s + w has seen.
// A position remap (position_remap.h: why an attention feature, how the regimes merge):
// far_query(i) = min(i, s + w - 1), far_key(j) = j, front = s, back = w. The forward over a
// whole sequence applies the same mask and positions, so token-by-token decoding with the
// bounded cache equals it.
// Keys: attn_sink_window = w (> 0 turns it on), attn_sink_tokens = s (4, the paper's choice;
// 0 = the paper's window-attention baseline, which evicts the first tokens too).
// Deviations: keys are cached rotated at their absolute position and the sinks' far regime
// rotates the query to its slot (same scores as the paper's re-rotation of un-rotated keys by
// cache slot, position_remap.h). Not done: the paper's optional learned sink token in
// pretraining (a training choice: the first s tokens of any text serve as sinks here).
#pragma once

#include <algorithm>

#include "nn/attention/features/position_remap.h"

namespace tz::nn {

class StreamingRule : public RemapRule {
 public:
  StreamingRule(int64_t sinks, int64_t window) : s(sinks), w(window) {}
  bool visible(int64_t i, int64_t j) const override { return j < s || i - j < w; }
  bool far(int64_t i, int64_t j) const override { return i - j >= w; }
  int64_t far_query(int64_t i) const override { return std::min(i, s + w - 1); }
  int64_t far_key(int64_t j) const override { return j; }
  int64_t front() const override { return s; }
  int64_t back() const override { return w; }
  int64_t s, w;
};

}  // namespace tz::nn
