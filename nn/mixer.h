// The interfaces every zoo component plugs into.
//
// A sequence **mixer** maps x [B, T, C] to y [B, T, C], mixing information across positions
// (attention, recurrences, state-space models, convolutions). It has a parallel form over a
// whole sequence (training) and, where its paper has one, a step form that consumes a few
// positions at a time and carries an explicit state (KV cache, recurrent state, conv state,
// memory). The conformance suite proves that feeding tokens one by one through step()
// reproduces forward().
//
// A **position scheme** places tokens in order: it can add to the embeddings (absolute
// schemes), rotate queries and keys (RoPE, xPos) or bias the attention scores (ALiBi, T5),
// always from explicit absolute positions so cached decoding cannot drift.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace tz::nn {

// Extra loss terms a module adds during forward (ponder cost, reconstruction, ...); the
// trainer adds them to the task loss.
struct AuxLosses {
  std::vector<std::pair<std::string, Tensor>> terms;
  void add(const std::string& name, const Tensor& value) { terms.emplace_back(name, value); }
  Tensor total() const;  // sum of the terms, or undefined when there are none
};

class PositionScheme;

struct MixerContext {
  int64_t start = 0;                       // absolute position of the first token of x
  const PositionScheme* pos = nullptr;     // how attention sees positions (may be null)
  AuxLosses* aux = nullptr;                // where to add auxiliary losses (may be null)
  // Values one layer hands to the next within a forward (e.g. RealFormer's attention
  // scores), by name; null when the caller keeps none.
  std::map<std::string, Tensor>* carry = nullptr;
  int64_t layer = 0;                       // index of the block running
};

// A mixer's decoding state. Each mixer defines its own subclass.
struct MixerState {
  virtual ~MixerState() = default;
  int64_t length = 0;  // positions consumed so far
};

class Mixer : public Module {
 public:
  // Parallel form: x [B, T, C] → [B, T, C]; ctx.start is the position of x[:, 0].
  virtual Tensor forward(const Tensor& x, const MixerContext& ctx) = 0;
  // True when output t depends only on inputs 0..t.
  virtual bool causal() const { return true; }
  // True when step() is implemented.
  virtual bool has_step() const { return false; }
  // A fresh state for `batch` sequences of at most `capacity` positions.
  virtual std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const;
  // Step form: x [B, T', C] (usually T' = 1) continuing the sequence held in `state`.
  virtual Tensor step(const Tensor& x, MixerState& state, const MixerContext& ctx);
  // Why there is no step form, for the error message (e.g. "needs the whole sequence").
  virtual std::string why_no_step() const { return "its paper defines no recurrent form"; }
};

class PositionScheme : public Module {
 public:
  // Added to the token embeddings at positions start .. start+T-1: [T, C], or undefined.
  virtual Tensor embed(int64_t start, int64_t T, DType dtype) const { return Tensor(); }
  // Added to the input of the query and key projections only, not the values (Shortformer's
  // position-infused attention): [T, C] for positions start.., or undefined.
  virtual Tensor qk_input(int64_t start, int64_t T, DType dtype) const { return Tensor(); }
  // Rotates q [B, H, T, D] (positions q_start..) and k [B, H, S, D] (positions k_start..).
  virtual void rotate(Tensor& q, Tensor& k, int64_t q_start, int64_t k_start) const {}
  virtual bool rotates() const { return false; }
  // Additive attention-score bias [H, T, S] for queries at q_start.. and keys at 0..S-1.
  // `ctx` (null outside a model) lets a scheme compute its bias once per forward and share
  // it with every layer through ctx->carry (T5), or pick per-layer weights by ctx->layer.
  // A scheme that wraps another must pass ctx on.
  virtual Tensor score_bias(int64_t heads, int64_t q_start, int64_t T, int64_t S, DType dtype,
                            const MixerContext* ctx = nullptr) const {
    return Tensor();
  }
  virtual bool biases_scores() const { return false; }
  // A score term that depends on the projected queries/keys [B, H, T, D] / [B, H, S, D]
  // (Transformer-XL's content-position and position-bias terms, TUPE): [B, H, T, S], for
  // queries at q_start.. and keys at k_start... Undefined when the scheme has none.
  // `ctx` as for score_bias (Transformer-XL's per-layer W_{k,R}; TUPE's shared position term).
  virtual Tensor query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                  const MixerContext* ctx = nullptr) const {
    return Tensor();
  }
  virtual bool biases_with_queries() const { return false; }
  // The longest position it can represent (0 = unbounded).
  virtual int64_t max_positions() const { return 0; }
};

}  // namespace tz::nn
