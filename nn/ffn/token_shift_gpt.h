// Token Shift GPT: an attention-free LM whose every block is a gMLP-style FFN that mixes
// tokens only through shifted means of its gate features. lucidrains/token-shift-gpt (a
// repository, no paper).
//
// Shape letters: B batch, T time, C model width, G the gate width (ffn_mult C / 2), S the
// number of shifted chunks, w_c = 2^c the window of chunk c.
//   [v_t, g_t] = gelu(x_t W_in + b_in),  g_t <- LayerNorm(g_t)        (v, g [B, T, G])
//   shifted means: the G gate channels are split into S + 1 chunks; chunk c < S at position t
//   receives the mean of the window of length w_c that ends w_c steps back,
//       g'_t[c] = mean { g_j[c] : t - 2 w_c < j <= t - w_c, j >= 0 }   (0 while t < w_c)
//   and the last chunk passes g_t through (the repository's x_pass);
//   or (token_shift_gpt_gamma > 0) the discounted cumulative sum, shifted by one:
//       h_t = gamma h_{t-1} + g_t (the scan),  g'_t = h_{t-1}
//   y_t = (v_t (g'_t W_gate + b_gate)) W_out + b_out
// Both forms read no position after t, so the block is causal. S defaults to
// ceil(log2 context): the windows reach back over the whole context.
// Deviation: the repository divides a window's sum by its nominal length from a shifted
// arange (off by one at the start); here by the number of positions the window holds.
// Decoding: the shifted form keeps the last 2 w_{S-1} gate rows (every window that ends
// before the next position), the discounted form h [B, G].
// Whole model: this FFN in every block's one (mixer) sublayer, layout "s" per block.
#pragma once

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::nn {

inline const Key<int64_t> kTsgShifts{"token_shift_gpt_shifts", 0,
                                     "number of shifted chunks S (0 = ceil(log2 context))"};
inline const Key<double> kTsgGamma{"token_shift_gpt_gamma", 0.0,
                                   "> 0: the discounted cumulative sum with this gamma instead of shifted means"};

struct TokenShiftGptOptions {
  int64_t dim = 0;     // C
  int64_t gate = 0;    // G
  int64_t shifts = 0;  // S
  double gamma = 0;    // > 0: discounted cumsum
};
TokenShiftGptOptions token_shift_gpt_options(const ModelDims& dims, const Config& config);

struct TokenShiftGptState : MixerState {
  Tensor rows;  // shifted form: the last 2 w_{S-1} gate rows [B, 2 w_{S-1}, G]; discounted: h [B, G]
  void visit(StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("rows", rows);
  }
};

// h_t = gamma h_{t-1} + x_t over x [B, T, G] from h0 [B, G] (undefined: zeros), on the scan.
Tensor discounted_cumsum(const Tensor& x, double gamma, const Tensor& h0 = Tensor());

class TokenShiftGpt : public Mixer {
 public:
  TokenShiftGpt(const TokenShiftGptOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // g' for the gate features g [B, T, G] at positions start.. (rows: the state's, or undefined).
  Tensor shifted_gate(const Tensor& g, int64_t start, Tensor* rows) const;
  int64_t history() const { return int64_t(2) << (options.shifts - 1); }  // 2 w_{S-1}

  TokenShiftGptOptions options;
  std::shared_ptr<Linear> in_proj, gate_proj, out_proj;
  std::shared_ptr<LayerNorm> gate_norm;
};

}  // namespace tz::nn
