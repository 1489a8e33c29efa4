// What the sparse and memory-efficient exact attention mixers (nn/sparse_attention/) share:
// the layer around the attention (projections, heads, KV cache, output) and the config keys
// of their patterns. Each variant file gives only how its heads attend: a pattern as a mask
// term of the fused kernel (core/kernels/attention_layout.h) or a split into partial results
// merged by log-sum-exp (core/attention_partial.h).
//
// Shapes: B batch, T query positions, S key positions (cache length + T when decoding), C
// model dim, H heads, D = C / H.
//   q, k, v = split_heads(x W_qkv)       [B, H, T, D], k and v appended to the cache
//   o = attend(q, k, v, q_offset)        [B, H, T, D]  (query i at key position q_offset + i)
//   y = merge_heads(o) W_o               [B, T, C]
// Positions come from the model (its embedding); the mixers take no rotary scheme or score
// bias, and refuse masks of the context (key padding, forgotten keys, segment memory).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/kernels/attention_layout.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kSparseWindow{"sparse_window", 256, "sliding-window width w: keys p - w < j <= p"};
inline const Key<int64_t> kSparseStride{"sparse_stride", 64, "Sparse Transformer's stride l (about sqrt(L))"};
inline const Key<std::string> kSparsePattern{"sparse_pattern", "strided",
                                             "Sparse Transformer pattern: strided or fixed"};
inline const Key<int64_t> kSparseSummary{"sparse_summary", 8, "fixed pattern: summary positions c per block of l"};
inline const Key<std::string> kSparseHeads{
    "sparse_heads", "merged", "how heads share a factorised pattern: merged (A1 u A2 in every head) or split (A1, A2)"};
inline const Key<int64_t> kSparseGlobal{"sparse_global", 1, "global tokens (a prefix every query sees), or blocks"};
inline const Key<std::vector<int64_t>> kSparseDilations{
    "sparse_dilations", {1}, "dilation per head, cycled over the heads (Longformer)"};
inline const Key<int64_t> kSparseBlock{"sparse_block", 64, "block size b (BigBird, BlockBERT)"};
inline const Key<int64_t> kSparseWindowBlocks{"sparse_window_blocks", 1, "BigBird: key blocks on each side"};
inline const Key<int64_t> kSparseRandom{"sparse_random", 3, "BigBird: random key blocks per query block"};
inline const Key<int64_t> kSparseSeed{"sparse_seed", 0, "seed of the random blocks"};
inline const Key<int64_t> kSparseChunk{"sparse_chunk", 64, "query and key chunk of memory-efficient attention"};
inline const Key<int64_t> kSparseSegment{"sparse_segment", 64, "LongNet: the smallest segment w_0 (branch i: w_0 2^i)"};
inline const Key<int64_t> kSparseBranches{"sparse_branches", 3, "LongNet: dilated branches (w_0 2^i, r = 2^i)"};

// How the heads attend: q [B, H, T, D], k, v [B, H, S, D] -> o [B, H, T, D], causal, query
// i at key position q_offset + i. Differentiable.
using Attend = std::function<Tensor(const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset)>;

// Causal fused attention with one mask term (or none).
Tensor attend_masked(const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset,
                     std::shared_ptr<const kernels::MaskTerm> term);
// An Attend through a pattern's layout mask, built once per (H, S) and kept.
Attend attend_pattern(kernels::SparsePattern pattern);
Attend attend_pattern(kernels::LayoutCache::PatternFor pattern_for);  // a pattern that depends on (H, S)

struct SparseAttentionOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  std::string name;   // "local_attention(w=256)": what describe() says
  Attend attend;
};

// The decoding state: keys and values of the positions so far, [B, H, capacity, D].
struct SparseKVState : MixerState {
  Tensor k, v;
  void visit(StateVisitor& s) override {
    MixerState::visit(s);
    s.tensor("k", k);
    s.tensor("v", v);
  }
};

class SparseAttention : public Mixer {
 public:
  SparseAttention(SparseAttentionOptions options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  SparseAttentionOptions options;
  std::shared_ptr<Linear> qkv, out;

 protected:
  // The checked input projected to q, k, v [B, H, T, D] (views of one product); with a state,
  // k and v are appended to its cache and returned as the whole cache, q_offset its old length.
  struct Projected {
    Tensor q, k, v;
    int64_t q_offset = 0;
  };
  Projected project(const Tensor& x, const MixerContext& ctx, MixerState* state);
};

// A causal self-mixer only: refuses encoder and cross use, naming the id.
void check_causal_self(const char* id, bool causal, int64_t context_dim);

}  // namespace tz::nn
