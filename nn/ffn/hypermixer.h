// HyperMixer (Mai, Pannatier, Fehr, Chen, Marelli, Fleuret & Henderson 2023, "HyperMixer: An
// MLP-based Low Cost Alternative to Transformers", arXiv:2203.03691, ACL 2023): MLP-Mixer's
// token-mixing MLP, with its weights generated per token by hypernetworks, so that it takes
// any length and treats positions alike. With x [B, T, C] (normed by the block), F the
// hypernetwork output width d' (hypermixer_mult · C) and P_t the sinusoid of position t:
//   z = x + P                                                    [B, T, C]
//   W1_t = h1(z_t) = GELU(z_t A1) B1,  W2_t = h2(z_t) = GELU(z_t A2) B2     [B, T, F] each
//   non-causal (the paper): H = W1^T x = Σ_j W1_j ⊗ x_j            [B, F, C], one for all t
//   causal (not in the paper): H_t = Σ_{j ≤ t} W1_j ⊗ x_j          [B, T, F, C], prefix sums
//   y_t = LN(Σ_k W2_t[k] · GELU(H_t[k, :]))                        [B, T, C]
// so the token MLP's hidden layer has F units whose input weights over the tokens are W1 and
// whose output weights are W2. Without P (hypermixer_positions false) the non-causal form is
// permutation-equivariant: permuting the tokens permutes W1, W2 and y alike and leaves H.
// The causal form replaces W1^T x by its prefix sums over j ≤ t, the catalogue's adaptation:
// output t reads positions ≤ t only, and a decoding state is the running H [B, F, C], so a
// step costs O(F C) at any position (the paper's non-causal cost is O(T F C) per sequence).
// Details from the authors' code (idiap/hypermixing): hypernetworks C → C → F without biases,
// the same GELU in the token MLP, a LayerNorm on its output, the inputs of the hypernetworks
// x + P but the mixed values x. Deviations: the authors' code scales x by √C before adding
// the sinusoids; here the block's norm leaves x at unit scale, as large as P, and x is not
// scaled. Not done: tied W1 = W2 and the later multi-head HyperMixing.
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kHypermixerMult{"hypermixer_mult", 2,
                                          "HyperMixer: token-MLP hidden width d' = hypermixer_mult · dim"};
inline const Key<bool> kHypermixerPositions{
    "hypermixer_positions", true, "HyperMixer: add the sinusoids P to the hypernetworks' inputs (false: no P)"};

struct HypermixerState : MixerState {
  Tensor sum;  // H = Σ_{j < length} W1_j ⊗ x_j: [B, F, C]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("sum", sum);
  }
};

struct HypermixerOptions {
  int64_t dim = 0;        // C
  int64_t hidden = 0;     // F (d')
  bool causal = true;     // prefix sums (a decoder) or the paper's sum over all tokens
  bool positions = true;  // P in the hypernetworks' inputs
  double pos_base = 1e4;  // base of the sinusoid frequencies
};

class Hypermixer : public Mixer {
 public:
  Hypermixer(const HypermixerOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool causal() const override { return options.causal; }
  bool has_step() const override { return options.causal; }
  std::string why_no_step() const override { return "the non-causal token MLP sums over the whole sequence"; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // W1, W2 [B, T, F] for x [B, T, C] at positions start.. (the hypernetworks).
  std::pair<Tensor, Tensor> weights(const Tensor& x, int64_t start) const;

  HypermixerOptions options;
  std::shared_ptr<Linear> h1_in, h1_out, h2_in, h2_out;  // A1, B1, A2, B2
  std::shared_ptr<LayerNorm> out_norm;
};

}  // namespace tz::nn
