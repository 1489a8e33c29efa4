// Neural Turing Machine: a controller that reads and writes an external memory matrix
// through soft, differentiable addressing. "Neural Turing Machines", Graves, Wayne,
// Danihelka 2014, arXiv:1410.5401.
//
// Shapes: B batch, T positions of a call, C width of the layer, N memory rows (slots), W row
// width, Hc controller width. The memory M is [B, N, W]; a weighting w is [B, N] (non-negative,
// sums to 1 over the N rows). Per token t, with one read head and one write head (sec. 3):
//   h_t  = tanh(W_x x_t + W_r r_{t-1} + b)            the controller: feed-forward over
//                                                      [x_t, r_{t-1}] (the paper's FF variant)
//   each head emits from h_t: key k [W], β = softplus(β̂) > 0, g = σ(ĝ), shift weights
//   s = softmax(ŝ) over the shifts {-1, 0, +1}, γ = 1 + softplus(γ̂) >= 1; the write head
//   also erase e = σ(ê) [W] and add a [W].
//   addressing (sec. 3.3), for w_{t-1} the head's previous weighting:
//     w^c_i = softmax_i(β cos(k, M_i))                  content (3.3.1, eq. 5-6)
//     w^g   = g w^c + (1 - g) w_{t-1}                  interpolation (eq. 7)
//     w̃_i   = Σ_j w^g_j s(i - j)   (indices mod N)     circular convolution (eq. 8): the
//           = s(+1) w^g_{i-1} + s(0) w^g_i + s(-1) w^g_{i+1}
//     w_i   = w̃_i^γ / Σ_j w̃_j^γ                        sharpening (eq. 9)
//   write (sec. 3.2), with the write head's w:  M_i <- M_i ⊙ (1 - w_i e) + w_i a
//   read (sec. 3.1), with the read head's w (on the memory just written):  r_t = Σ_i w_i M_i
//   y_t  = W_o [h_t, r_t]                              [C]
// Start of a sequence (a fresh state): M_0 = 10^-6 everywhere (the constant start that
// Collier and Beel, arXiv:1807.08518, found to train best), both previous weightings focused
// on row 0, r_0 = row 0 of M_0. No position enters: the heads move by their shifts alone.
//
// The loop over t is the paper's recurrence and the decode step at once: forward over a
// sequence and forward continuing a state token by token run the same operations in the same
// order, so they agree to the last bit. A state holds M, both weightings and r (detached: a
// call continuing it does not backpropagate into the call that wrote it).
//
// Deviations and choices the paper leaves open:
// - the controller is feed-forward (one tanh layer over [x_t, r_{t-1}]), not an LSTM; the
//   paper runs both. Across tokens only the memory, the weightings and r carry information.
// - within a token the write comes before the read, so r_t can see what x_t wrote.
// - cosine similarity on rows normalised as x / sqrt(|x|² + 10^-12), so an empty (near zero)
//   row has no infinite gradient.
// - sharpening computes w = softmax(γ log(w̃ + 10^-30)): the same w̃^γ / Σ w̃^γ, but with the
//   largest term factored out, so a large γ cannot underflow every term to 0 (0 / 0), and a
//   row whose w̃ underflowed to 0 has a finite gradient.
// - the shifts are {-1, 0, +1} (the paper's example); one read and one write head.
#pragma once

#include <memory>
#include <string>

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kNtmSlots{"ntm_slots", 128, "Neural Turing Machine: memory rows N (>= 2)"};
inline const Key<int64_t> kNtmWidth{"ntm_width", 20, "Neural Turing Machine: width W of a memory row"};
inline const Key<int64_t> kNtmController{"ntm_controller", 0,
                                         "Neural Turing Machine: controller width (0 = the model width dim)"};

struct NtmOptions {
  int64_t dim = 0;             // C: input and output width
  int64_t slots = 128;         // N (the paper's copy task: 128)
  int64_t width = 20;          // W (the paper's copy task: 20)
  int64_t controller = 0;      // Hc (0 = C)
  bool bias = true;            // biases of the controller and output projections
  double dropout = 0.0;        // on the output projection
  double out_init_std = 0.02;  // of W_o
};

// What one head emits for one token, after its activations.
struct NtmHead {
  Tensor key;    // k [B, W]
  Tensor beta;   // β > 0 [B, 1]
  Tensor gate;   // g in (0, 1) [B, 1]
  Tensor shift;  // s [B, 3]: the weights of the shifts -1, 0, +1 (sum 1)
  Tensor gamma;  // γ >= 1 [B, 1]
};
// The head's activations of its raw outputs [B, W + 6] laid out as k, β̂, ĝ, ŝ (3), γ̂.
NtmHead ntm_head(const Tensor& raw);

// The addressing stages (eq. 5-9), each [B, N]; memory [B, N, W].
Tensor ntm_content(const Tensor& memory, const Tensor& key, const Tensor& beta);  // softmax_i(β cos(k, M_i))
Tensor ntm_shift(const Tensor& w, const Tensor& shift);                           // circular convolution
Tensor ntm_sharpen(const Tensor& w, const Tensor& gamma);                         // w^γ / Σ w^γ
// All of them: content, interpolation with w_prev, shift, sharpening.
Tensor ntm_address(const Tensor& memory, const Tensor& w_prev, const NtmHead& head);
// Reading Σ_i w_i M_i [B, W] and writing M ⊙ (1 - w e^T) + w a^T [B, N, W].
Tensor ntm_read(const Tensor& memory, const Tensor& w);
Tensor ntm_write(const Tensor& memory, const Tensor& w, const Tensor& erase, const Tensor& add);

// The memory and the heads' positions between calls.
struct NtmState : MixerState {
  Tensor memory;           // M [B, N, W]
  Tensor read_w, write_w;  // the previous weightings [B, N]
  Tensor read;             // r_{t-1} [B, W]
  void visit(StateVisitor& s) override {
    MixerState::visit(s);
    s.tensor("memory", memory);
    s.tensor("read_w", read_w);
    s.tensor("write_w", write_w);
    s.tensor("read", read);
  }
};

// Every weighting of a call, for tests and probes: [B, T, N] each.
struct NtmTrace {
  Tensor read_w, write_w;
};

class NeuralTuringMachine : public Mixer {
 public:
  NeuralTuringMachine(const NtmOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // The fresh state of a sequence's start (M_0, weightings on row 0, r_0).
  void reset(NtmState& s, int64_t batch, DType dtype) const;
  // The recurrence over x [B, T, C] from `s`, which it advances (with gradients: the caller
  // detaches what it keeps); the weightings go to `trace` when given.
  Tensor run(const Tensor& x, NtmState& s, NtmTrace* trace = nullptr);

  NtmOptions options;
  std::shared_ptr<Linear> controller_x, controller_r;  // W_x (with b), W_r
  std::shared_ptr<Linear> heads;                       // h_t -> read head (W + 6), write head (3W + 6)
  std::shared_ptr<Linear> out;                         // W_o
  std::shared_ptr<Dropout> drop;
};

}  // namespace tz::nn
