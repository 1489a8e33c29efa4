// The Blockwise Parallel Transformer: attention and feed-forward fused per query block.
// "Blockwise Parallel Transformer for Large Context Models", Liu, Abbeel 2023,
// arXiv:2305.19370, alg. 1.
//
// Shapes and the layer: nn/sparse_attention/common.h; query blocks of b positions,
// F = 4 C the feed-forward width. The sublayer pair of a pre-norm block, u its input:
//   a = Attn(u) W_o,   y = a + FFN(LN(u + a)),   FFN(z) = GELU(z W_1 + b_1) W_2 + b_2
// For each query block Q_r (positions [r b, (r + 1) b)): its attention runs over the key
// blocks up to its own (causal, the fused kernel's online softmax over key tiles), and its
// FFN runs at once on the same block, so no [T, F] activation exists at one time in the
// forward: y_r = a_r + FFN(LN(u_r + a_r)). The model stacks it with mixer-only blocks
// ("layout": "s..."), the block adding y to the stream.
// Deviation: the training backward keeps every block's [b, F] activations (no
// checkpointing), so the saving is the forward's (inference and prefill).
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {

inline const Key<int64_t> kBptBlock{"bpt_block", 64, "Blockwise Parallel Transformer: query block b"};

class BlockwiseParallelTransformer : public SparseAttention {
 public:
  BlockwiseParallelTransformer(int64_t dim, int64_t heads, int64_t block, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  Tensor ffn(const Tensor& z) const;  // FFN(LN(z)), any leading shape
  int64_t block;
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> w1, w2;
};

}  // namespace tz::nn
