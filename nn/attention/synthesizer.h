// Synthesizer (Tay et al. 2021, "Synthesizer: Rethinking Self-Attention for Transformer
// Models", arXiv:2005.00743, ICML 2021): attention weights synthesised without token-token
// dot products. Per head h, with x [B, T, C], H heads of size D = C / H and L the context:
//   Dense    B^h_i = W2 relu(W1 x_i + b1) + b2     [L] per position i: a row of logits
//                                                  from x_i alone (W2: C -> H L)
//   Random   B^h = R^h                              [L, L], learned (or fixed at its
//                                                  random init: synth_fixed)
//   Y^h = softmax(B^h + M) (x W^V)^h,  out = concat_h Y^h W^O,  M = −∞ for j > i (causal)
// Row i reads logits B_i[j] for key positions j ≤ i. The Random form does not look at the
// input at all: its weights are the same for every sequence. Not done: the factorised
// (low-rank B) forms and the mixtures with dot-product logits.
// Decoding keeps x W^V of earlier positions in a [B, L, C] cache.
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<std::string> kSynth{"synthesizer", "dense",
                                     "Synthesizer logits: dense (an MLP of x_i) or random (an L x L table)"};
inline const Key<bool> kSynthFixed{"synth_fixed", false, "Random Synthesizer: keep R at its random init (a buffer)"};

struct SynthesizerState : MixerState {
  Tensor values;  // x W^V of the positions so far, then zeros: [B, L, C]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("values", values);
  }
};

class Synthesizer : public Mixer {
 public:
  Synthesizer(int64_t dim, int64_t heads, int64_t context, bool random, bool fixed, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The weights softmax(B + M) [B or 1, H, T, S] of rows start.. over keys k0.. (S keys).
  Tensor weights(const Tensor& x, int64_t start, int64_t k0, int64_t S) const;

  std::shared_ptr<Linear> dense1, dense2, value, out;  // dense1/2 only for the dense form
  Tensor table;                                        // R [H, L, L], random form only

 private:
  int64_t dim_, heads_, context_;
  bool random_;
};

}  // namespace tz::nn
