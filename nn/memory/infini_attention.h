// Infini-attention: local causal softmax attention plus a compressive memory inside one
// attention layer. "Leave No Context Behind: Efficient Infinite Context Transformers with
// Infini-attention", Munkhdalai, Faruqui, Gopal 2024, arXiv:2404.07143.
//
// Shapes: B batch, T positions of a call, C width, H heads, D = C / H head size, L segment
// length. Positions are cut into segments of L (segment s holds positions sL .. sL + L - 1).
// Per head, with σ(x) = elu(x) + 1 (sec. 2.1.2) and q, k, v = x W_qkv [B, H, T, D]:
//   A_dot  = softmax(q K_s^T / √D) V_s            causal, keys of segment s only      [T, D]
//   A_mem  = σ(q) M_{s-1} / (σ(q) . z_{s-1})        (eq. 3)                            [T, D]
//   linear: M_s = M_{s-1} + σ(K_s)^T V_s           (eq. 4)                            [D, D]
//   delta:  M_s = M_{s-1} + σ(K_s)^T (V_s - σ(K_s) M_{s-1} / (σ(K_s) z_{s-1}))  (eq. 5)
//           z_s = z_{s-1} + Σ_{t in s} σ(k_t)                                          [D]
//   y      = sigmoid(β_h) A_mem + (1 - sigmoid(β_h)) A_dot    β [H] learned (eq. 6)
//   out    = concat_h(y) W_o                                                          [B, T, C]
// Every query of segment s reads M_{s-1}: the memory changes only when a segment ends.
//
// The first segment: M_0 = 0 and z_0 = 0 make the read 0 / 0. We define the read of the
// empty memory as the zero vector (A_mem = 0, and the delta rule's retrieved value 0) and do
// not divide at all while the memory is empty, so no ε enters later reads: from the second
// segment on σ(q) . z > 0 exactly, since σ > 0 and z sums σ(k) of at least one key. So in
// the first segment y = (1 - sigmoid(β)) A_dot.
//
// Forms: the segment-wise form (infini_attention_segments, what the mixer runs: one matrix
// product per segment for the read and for the update) and the token-level recurrence
// (infini_attention_recurrent: one token at a time, the update accumulated token by token
// into a pending ΔM, Δz that join M, z when the segment ends). Decoding is the segment-wise
// form on pieces of one token: the state holds M, z and the current segment's keys and
// values, so a token costs O(L D + D^2) however long the history.
//
// Deviations from the paper:
// - The local attention sees the model's position scheme (rotary or relative-bias schemes,
//   positions absolute); the memory reads and writes the unrotated q, k, as the paper's
//   memory carries no position.
// - Gradients flow through M and z across all segments of one forward call (backpropagation
//   through time over the call); what a caller's state keeps between calls is detached, as
//   with every KV cache here. Train with context = several segments.
// - infini_memory: false drops the memory path (y = A_dot, β unused): the control of the
//   proof that the memory carries information across segments.
#pragma once

#include <memory>
#include <string>

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kInfiniSegment{"infini_segment", 2048,
                                         "Infini-attention: segment length L (local attention span; the memory "
                                         "is updated when a segment ends)"};
inline const Key<std::string> kInfiniUpdate{"infini_update", "linear",
                                            "Infini-attention: memory update rule, linear (eq. 4) or delta (eq. 5)"};
inline const Key<bool> kInfiniMemory{
    "infini_memory", true, "Infini-attention: the compressive memory path (false: local attention only, y = A_dot)"};

struct InfiniOptions {
  int64_t dim = 0;             // C
  int64_t heads = 0;           // H (divides C)
  int64_t segment = 2048;      // L
  bool delta = false;          // the delta update rule (eq. 5) instead of the linear one (eq. 4)
  bool memory = true;          // false: y = A_dot
  bool bias = true;            // biases of the projections
  double dropout = 0.0;        // on the output projection
  double out_init_std = 0.02;  // of W_o
};

// The compressive memory and the current segment; tensors are undefined while empty.
struct InfiniState : MixerState {
  Tensor seg_k, seg_v;  // [B, H, <= L, D]: k and v of the current segment so far
  Tensor M, z;          // [B, H, D, D], [B, H, D]: undefined before the first segment ends
  void visit(StateVisitor& s) override {
    MixerState::visit(s);
    s.tensor("seg_k", seg_k);
    s.tensor("seg_v", seg_v);
    s.tensor("M", M);
    s.tensor("z", z);
  }
};

// What the kernels take besides q, k, v [B, H, T, D]: the gate sigmoid(β) [H] (undefined:
// no memory path), L, the rule, and where the local attention gets positions (may be null).
struct InfiniSpec {
  Tensor gate;
  int64_t segment = 0;
  bool delta = false;
  const MixerContext* ctx = nullptr;
  bool keep_detached = false;  // the state is a caller's: what it keeps is detached
};

// The segment-wise form: y [B, H, T, D], continuing `s` (s.length = the position of q's first
// row), which it leaves holding M, z and the open segment.
Tensor infini_attention_segments(const Tensor& q, const Tensor& k, const Tensor& v, const InfiniSpec& spec,
                                 InfiniState& s);
// The token-level recurrence (the reference; no positions): the same y and final state.
Tensor infini_attention_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const InfiniSpec& spec,
                                  InfiniState& s);

class InfiniAttention : public Mixer {
 public:
  InfiniAttention(const InfiniOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  InfiniOptions options;
  std::shared_ptr<Linear> qkv, out;
  std::shared_ptr<Dropout> drop;
  Tensor beta;  // β [H]: the memory's share is sigmoid(β)
};

}  // namespace tz::nn
