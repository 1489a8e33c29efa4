// Mogrifier LSTM. "Mogrifier LSTM", Melis, Kočiský, Blunsom, ICLR 2020, arXiv:1909.01792
// (sec. 2, eq. 1-2).
//
// Shapes: B batch, T time, C model dim = the LSTM's input and hidden size, k the rank of Q, R.
// Before each LSTM step the input x and the previous output h mogrify each other for r rounds
// (x^{-1} = x_t, h^0 = h_{t-1}), each a gate 2σ(.) in (0, 2) around 1:
//   x^i = 2σ(Q^i h^{i-1}) ⊙ x^{i-2}   for odd i <= r
//   h^i = 2σ(R^i x^{i-1}) ⊙ h^{i-2}   for even i <= r
// with Q^i = Q^i_up Q^i_down and R^i = R^i_up R^i_down of rank k (no biases, as the paper).
// Then the standard LSTM on the last x^i and h^i (x^↑, h^↑):
//   [i, f, g, o] = x^↑ W + h^↑ U + b   (4 C, PyTorch's gate order)
//   c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g),   h_t = σ(o) ⊙ tanh(c_t)
// The mixer returns h [B, T, C]. r = 0 is the plain LSTM. Sequential only: the state holds
// h and c [B, C], and decoding is the same step. Deviations: the forget bias starts at 1 (a
// common LSTM choice; the paper does not say); one LSTM layer per mixer (the model stacks them).
#pragma once

#include <vector>

#include "core/random.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kMogrifierRounds{"mogrifier_rounds", 5,
                                           "r: rounds of mutual gating of x and h_prev before each LSTM step "
                                           "(0 = plain LSTM; the paper's best are 4-6)"};
inline const Key<int64_t> kMogrifierRank{"mogrifier_rank", 8, "k: the rank of each Q^i and R^i (<= the model dim)"};

struct MogrifierOptions {
  int64_t dim = 0;     // C
  int64_t rounds = 5;  // r
  int64_t rank = 8;    // k
};

struct MogrifierState : MixerState {
  Tensor h, c;  // [B, C]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("h", h);
    v.tensor("c", c);
  }
};

class MogrifierLSTM : public Mixer {
 public:
  MogrifierLSTM(const MogrifierOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The r rounds on x [B, C] and h_prev [B, C]: (x^↑, h^↑).
  std::pair<Tensor, Tensor> mogrify(Tensor x, Tensor h) const;

  MogrifierOptions options;
  std::shared_ptr<Linear> w_proj, u_proj;  // W (with b) and U: C -> 4 C
  // Q^i for odd i (i = 1, 3, ...) and R^i for even i, each as down (C -> k) then up (k -> C).
  std::vector<std::shared_ptr<Linear>> down, up;  // index i - 1
};

}  // namespace tz::nn
