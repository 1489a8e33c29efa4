// xLSTM's two mixers. "xLSTM: Extended Long Short-Term Memory", Beck, Pöppel, Spanring, Auer,
// Prudnikova, Kopp, Klambauer, Brandstetter, Hochreiter 2024, arXiv:2405.04517. The cells'
// equations, their stabiliser and their forms are in xlstm_cells.h.
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head.
//
// xlstm_mlstm (the mLSTM block, sec. 2.3 and fig. 10, reduced):
//   q_t = x_t W_q,  k_t = x_t W_k / sqrt(D),  v_t = x_t W_v            (per head)
//   ĩ_t = x_t w_i + b_i,  λ_t = log σ(x_t w_f + b_f)                   (one of each per head)
//   h̃ = mLSTM(q, k, v, ĩ, λ)                                          (matrix memory [D, D])
//   out = (σ(x W_o + b_o) ⊙ GroupNorm_H(h̃)) W_out
// linear_form picks the cell's form of a whole-sequence forward (chunked, parallel or
// recurrent: the same numbers), linear_chunk the chunk; decoding is the recurrent form. The
// state holds [C̄ | n̄] [B, H, D, D + 1] and m [B, H]: O(D^2) per token whatever the position.
// Deviations from the paper's block: no up-projection (the cell works at width C, the paper's
// at 2 C), no causal conv before q and k, no learnable skip, dense instead of block-diagonal
// q, k, v projections; the output gate o_t = σ(x W_o + b_o) of the cell (sec. 2.3) gates the
// normalised h̃ in place of the block's swish branch. The forget gate is the sigmoid one (the
// paper's default; the catalogue row allows exp). Gate biases as the paper's code: b_f spaced
// over [3, 6] across heads (long memory at start), b_i = 0. m_0 = 0 for an empty memory (as the
// reference code's recurrent step), so a fresh forward equals a decode from the zero state.
//
// xlstm_slstm (the sLSTM block, sec. 2.2 and fig. 9, reduced):
//   p_t = x_t W + b + R h_{t-1}  [H, 4, D] (z, i, f, o; R block-diagonal, one [D, 4 D] per head)
//   h = sLSTM(p)  (exponential input gate, sigmoid forget gate in log space, stabiliser m)
//   out = GroupNorm_H(h) W_out
// Sequential only: the state holds c̄, n̄, m and h [B, H, D] each. Deviations: no causal conv
// on the i, f inputs and no gated MLP after the cell (the model's FFN sublayer stands for the
// block's post up-projection). b_f spaced over [3, 6] across each head's channels; R uniform
// in +-1 / sqrt(D) as a dense layer's default (the paper does not fix it).
#pragma once

#include "core/random.h"
#include "nn/layers.h"
#include "nn/linear_rnn/common.h"
#include "nn/linear_rnn/xlstm_cells.h"

namespace tz::nn {

struct MLstmOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
  int64_t chunk = 64;
  LinearAttentionForm form = LinearAttentionForm::chunked;
};

struct MLstmState : MixerState {
  Tensor S;  // [C̄ | n̄] [B, H, D, D + 1]
  Tensor m;  // [B, H]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("S", S);
    v.tensor("m", m);
  }
};

class MLstm : public Mixer {
 public:
  MLstm(const MLstmOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The cell's inputs for x [B, T, C].
  MLstmInputs cell_inputs(const Tensor& x) const;

  MLstmOptions options;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, gate_proj, o_proj, out_proj;  // gate_proj: [ĩ | f̃], H each
  std::shared_ptr<HeadGroupNorm> norm;
};

struct SLstmOptions {
  int64_t dim = 0;    // C
  int64_t heads = 0;  // H (divides C)
};

struct SLstmState : MixerState {
  Tensor c, n, m, h;  // [B, H, D] each
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("c", c);
    v.tensor("n", n);
    v.tensor("m", m);
    v.tensor("h", h);
  }
};

class SLstm : public Mixer {
 public:
  SLstm(const SLstmOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The cell's output h [B, H, T, D] for x [B, T, C], continuing `memory` in place.
  Tensor cell(const Tensor& x, SLstmMemory& memory, bool stabilised = true) const;

  SLstmOptions options;
  std::shared_ptr<Linear> w_proj, out_proj;  // w_proj: C -> [H, 4, D]
  Tensor R;                                  // [H, D, 4 D]
  std::shared_ptr<HeadGroupNorm> norm;
};

}  // namespace tz::nn
