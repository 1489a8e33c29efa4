// Hyena, the order-N operator of implicit long convolutions and gating. "Hyena Hierarchy:
// Towards Larger Convolutional Language Models", Poli, Massaroli, Nguyen, Fu, Dao, Baccus,
// Bengio, Ermon and Ré 2023, arXiv:2302.10866.
//
// Shape letters: B batch, T time (L = positions so far, the filters' length), C model width,
// N the order, F positional frequencies (E = 2F + 1 features), W the filter FFN's width,
// K the short conv's width.
//   (v, x^1, ..., x^N) = short_conv_K(in_proj(u))          [B, T, C] each (depthwise causal)
//   implicit filters, for t = 0..L-1 and τ = t / context:
//     PosEnc(t) = (τ, cos 2π f τ, sin 2π f τ for f = 1..F)  [L, E]
//     FFN = Linear(E, W) -> sin(ω ·) -> Linear(W, W) -> sin(ω ·) -> Linear(W, N C)
//     h^n_c(t) = FFN(PosEnc(t))_{n, c} · exp(-α_c τ)         (the exponential window; α_c fixed,
//     spaced from fast to slow decay over the channels: the window falls to 1e-2 at τ = 0.3
//     for the first channel and at τ = 1.5 for the last, as the reference code)
//   z^0 = v;  z^{n+1} = x^{n+1} ⊙ (h^{n+1} * z^n + b^{n+1} ⊙ z^n)   (causal long convs by FFT,
//     core/long_conv.h; b^n [C] the filters' skip term)
//   y = out_proj(z^N)
// Initialisation: every linear layer at PyTorch's default scale (std 1/sqrt(3 in)), as the
// reference code; z^N is a product of N + 1 projections, so a smaller scale starves it.
// Decoding: Hyena has no constant-size state. The state keeps the short conv's last K - 1
// inputs and the history of each z^n (n < N) up to the state's capacity; a step appends the
// new z^n and evaluates the long convolutions at the new positions only, so decoding gives
// the full forward's outputs. Without gradients the filters are evaluated once for the
// state's whole capacity and kept in it, and a step of up to core::kLongConvTailSteps
// positions sums over the history directly, O(L C) per order like attention's read of its
// KV cache; longer chunks (a prefill) and steps under gradients transform the whole
// history, O(L log L).
#pragma once

#include <vector>

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

inline const Key<int64_t> kHyenaOrder{"hyena_order", 2, "N: the Hyena order (number of long convs and gates)"};
inline const Key<int64_t> kHyenaFilterDim{"hyena_filter_dim", 32, "W: width of the implicit filter's FFN"};
inline const Key<int64_t> kHyenaPosFreqs{"hyena_pos_freqs", 4, "F: frequencies of the filter's positional encoding"};
inline const Key<int64_t> kHyenaShortConv{"hyena_short_conv", 3, "K: width of the short depthwise conv on projections"};
inline const Key<double> kHyenaSinFreq{"hyena_sin_freq", 1.0, "ω: the frequency of the filter FFN's sin activation"};

struct HyenaOptions {
  int64_t dim = 0;          // C
  int64_t order = 2;        // N
  int64_t filter_dim = 32;  // W
  int64_t pos_freqs = 4;    // F
  int64_t short_conv = 3;   // K
  double sin_freq = 1.0;    // ω
  int64_t context = 0;      // positions normalised by it (τ = t / context)
  bool direct = false;      // the long convs by the direct O(L^2) sums (tests)
};
HyenaOptions hyena_options(const ModelDims& dims, const Config& config);

struct HyenaState : MixerState {
  Tensor conv;            // [B, K - 1, (N + 1) C]
  std::vector<Tensor> z;  // N tensors [B, capacity, C]: z^0 .. z^{N-1} so far
  // [N, capacity, C], time-major: the filters at every position, evaluated at the first
  // call without gradients. A function of the weights alone, so not saved (like the history, it
  // assumes the weights do not change while the state is in use).
  Tensor filters;
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("conv", conv);
    for (size_t n = 0; n < z.size(); ++n) {
      std::string name = "z";  // (not "z" + ...: GCC 12 warns falsely on that inlined insert)
      name += std::to_string(n);
      v.tensor(name, z[n]);
    }
  }
};

class Hyena : public Mixer {
 public:
  Hyena(const HyenaOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  Tensor filters(int64_t L, DType dtype) const;  // h [N, C, L]

  HyenaOptions options;
  std::shared_ptr<Linear> in_proj, out_proj, ffn_in, ffn_mid, ffn_out;
  Tensor conv_weight, conv_bias, filter_bias;  // [(N + 1) C, K], [(N + 1) C], [N, C]
  Tensor decay;                                // α [C], fixed (not a parameter)
};

}  // namespace tz::nn
