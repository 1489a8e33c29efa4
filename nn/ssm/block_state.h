// The Block-State Transformer layer, single-head (SH) variant. "Block-State Transformers",
// Pilault, Fathi, Firat, Pal, Bacon and Goroshin 2023, arXiv:2306.09539.
//
// Shape letters: B batch, T time (L = positions so far), C model width, H heads, D = C / H,
// W the block length.
//   S = SSM(x)                       [B, T, C]  the context states: an S4D layer over the whole
//                                    sequence (nn/ssm/s4d.h: FFT long convolution, or its
//                                    recurrence when continuing a state)
//   blocks of W positions; position p lies in block b = floor(p / W), which starts at bW
//   q, k_x, v_x = x W_qkv            the block's tokens
//   k_s, v_s = S W_kv                the context states
//   query p attends, in one softmax, to
//     the context states at positions bW - W .. bW - 1 (the W states just before its block:
//     the SH variant's context, all from earlier positions), and
//     the tokens of its own block up to itself, bW .. p (causal self-attention in the block)
//   y = out_proj(attention)
// The keys are laid out [context states 0..L-1 | tokens 0..L-1] and a mask term
// (BlockStateMask) keeps the pairs above, tile by tile, so the fused attention kernel skips
// every tile outside the two bands: the cost is O(L W), not O(L^2).
// Deviations: the paper's block transformer runs self-attention and cross-attention as
// separate sublayers; here one attention sees both key sets (the SH context as extra keys, as
// a memory); no positions inside the attention (the SSM and the host model's embedding give
// order). Decoding: the SSM steps by its recurrence; the projected keys and values of the
// context states and tokens are cached (the mask hides all but the last two blocks).
#pragma once

#include "core/kernels/attention_mask.h"
#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"
#include "nn/ssm/s4d.h"

namespace tz::nn {

inline const Key<int64_t> kBstBlock{"bst_block", 16, "W: the Block-State Transformer's block length"};

// Keys [context 0..L-1 | tokens 0..L-1]; the query at p = q_offset + i in block b sees context
// keys bW - W <= j < bW and token keys L + bW <= j <= L + p.
class BlockStateMask : public kernels::MaskTerm {
 public:
  BlockStateMask(int64_t W, int64_t L) : W(W), L(L) {}
  kernels::Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                         int64_t q_offset) const override;
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const override;
  std::string describe() const override;
  void check(int64_t B, int64_t H, int64_t S) const override;
  int64_t W, L;
};

struct BlockStateOptions {
  int64_t dim = 0;     // C
  int64_t heads = 1;   // H
  int64_t block = 16;  // W
  S4dOptions ssm;
};
BlockStateOptions block_state_options(const ModelDims& dims, const Config& config);

struct BlockStateState : MixerState {
  std::unique_ptr<MixerState> ssm;
  Tensor ks, vs, kx, vx;  // [B, H, capacity, D] each
  void visit(StateVisitor& vis) override {
    MixerState::visit(vis);
    vis.nested("ssm", *ssm);
    vis.tensor("ks", ks);
    vis.tensor("vs", vs);
    vis.tensor("kx", kx);
    vis.tensor("vx", vx);
  }
};

class BlockState : public Mixer {
 public:
  BlockState(const BlockStateOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  // The block attention given the context states S [B, T, C] (tests perturb S directly).
  Tensor attend(const Tensor& x, const Tensor& states, BlockStateState* state = nullptr) const;

  BlockStateOptions options;
  std::shared_ptr<S4d> ssm;
  std::shared_ptr<Linear> qkv_proj, kv_proj, out_proj;
};

}  // namespace tz::nn
