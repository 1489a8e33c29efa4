// The interfaces every zoo component plugs into.
//
// A sequence **mixer** maps x [B, T, C] to y [B, T, C], mixing information across positions
// (attention, recurrences, state-space models, convolutions). One call covers every use:
// forward(x, ctx, state) with no state runs a whole sequence from scratch; with a state (KV
// cache, recurrent state, conv state, memory) it continues the sequence the state holds,
// whether x is a prefill chunk, the next training segment or one decoding step, and leaves
// the state ready for the next call. The state's `length` is the one position counter: x
// starts at position state->length (= ctx.start). The conformance suite proves that any
// split of a sequence into calls gives the same result as one call.
//
// A **position scheme** places tokens in order: it can add to the embeddings (absolute
// schemes), rotate queries and keys (RoPE, xPos) or bias the attention scores: by distance,
// as a relative-bias table (ALiBi, T5), or from the queries (Transformer-XL, TUPE); always
// from explicit positions so cached decoding cannot drift. Masks are not position schemes:
// they travel in MixerContext (key_padding, forgotten_keys).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
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
struct SdpaSpec;  // nn/attention/sdpa.h

struct MixerContext {
  int64_t start = 0;                    // absolute position of the first token of x
  const PositionScheme* pos = nullptr;  // how attention sees positions (may be null)
  AuxLosses* aux = nullptr;             // where to add auxiliary losses (may be null)
  // Values one layer hands to the next within a forward (e.g. RealFormer's attention
  // scores), by name; null when the caller keeps none.
  std::map<std::string, Tensor>* carry = nullptr;
  int64_t layer = 0;  // index of the block running
  // Masks every attention layer applies, as data (the mixer turns them into mask terms of
  // the attention kernel; other mixers refuse what they cannot honour):
  Tensor key_padding;     // [B, S] i64, 1 = a real key, 0 = padding hidden from every query
  Tensor forgotten_keys;  // [B, S] i64, 1 = hidden from every later query (Forgetful Causal
                          //   Masking, arXiv:2210.13432; the key's own position still sees it)
  // Cross-attention (a mixer built with ModelDims::context_dim > 0): keys and values come
  // from this context [B, S, context_dim]; context_padding [B, S] as key_padding.
  const Tensor* context = nullptr;
  Tensor context_padding;
  // Segment memory (Transformer-XL, models/segment_memory.h), for mixers that take it
  // (takes_memory): the layer's inputs at the M positions before x, memory [B, M, C], seen
  // as keys and values only, at positions start - M .. start - 1; memory_valid [B, M] i64
  // (0 = hidden: a row whose document started later; undefined = all real). With a state,
  // memory marks the start of a segment: the cached keys are replaced by the memory's.
  Tensor memory, memory_valid;
  // The same recurrence as one forward (segment > 0): the query at position p sees the keys
  // j >= floor(p / segment) segment - segment_memory (the block staircase).
  int64_t segment = 0, segment_memory = 0;
};

struct MixerState;

// What a state holds, walked by name so that a decoding state can be saved mid-sequence
// and restored into a fresh state from the same make_state (save_state / restore_state).
class StateVisitor {
 public:
  virtual ~StateVisitor() = default;
  virtual void tensor(const std::string& name, Tensor& t) = 0;  // undefined tensors included
  virtual void count(const std::string& name, int64_t& n) = 0;
  // A state nested in this one (a block's mixer state): its names get the prefix "name.".
  virtual void nested(const std::string& name, MixerState& s) = 0;
};

// A mixer's state between calls. Each mixer defines its own subclass, and lists in visit()
// every tensor and counter it keeps (after calling the base's), or saving it loses them.
struct MixerState {
  virtual ~MixerState() = default;
  int64_t length = 0;  // positions consumed so far: the position of the next input
  virtual void visit(StateVisitor& v) { v.count("length", length); }
};

// Every tensor and counter of `state` by dotted name (counters as i64 [1] tensors), copied.
std::map<std::string, Tensor> save_state(MixerState& state);
// Puts what save_state gave back into `state` (made by the same make_state): throws naming
// a saved name the state does not hold, a name of the state missing from `saved`, or a
// tensor whose shape or dtype differs.
void restore_state(MixerState& state, const std::map<std::string, Tensor>& saved);
// A state's fixed-shape history [B, L, F] of per-position rows (a value cache): writes this
// call's rows [B, T, F] (positions start..) after the `start` rows kept, and returns the rows
// of positions 0 .. start + T - 1. `history` keeps its shape, so a saved state restores.
Tensor append_history(Tensor& history, const Tensor& rows, int64_t start);
// [T, S]: 1 where key position k0 + j lies after query position q0 + i (the causal mask of
// queries q0.. over keys k0..), else 0; for masked_fill.
Tensor future_mask(int64_t T, int64_t S, int64_t q0, int64_t k0);

class Mixer : public Module {
 public:
  // x [B, T, C] → [B, T, C]. state null: a whole sequence from scratch, x[:, 0] at position
  // ctx.start. state given (made by make_state): continue it; ctx.start must equal
  // state->length, which the call advances by T.
  virtual Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) = 0;
  // True when output t depends only on inputs 0..t.
  virtual bool causal() const { return true; }
  // True when forward() accepts a state (continuation, decoding).
  virtual bool has_step() const { return false; }
  // True when forward() honours ctx.memory and ctx.segment (segment memory).
  virtual bool takes_memory() const { return false; }
  // A fresh state for `batch` sequences of at most `capacity` positions.
  virtual std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const;
  // Decoding: forward() continuing `state` (usually one position).
  Tensor step(const Tensor& x, MixerState& state, const MixerContext& ctx) { return forward(x, ctx, &state); }
  // Why there is no step form, for the error message (e.g. "needs the whole sequence").
  virtual std::string why_no_step() const { return "its paper defines no recurrent form"; }

 protected:
  // Checks a state handed to forward(): made by make_state (type S), positions agree.
  template <class S>
  S& own_state(MixerState* state, const MixerContext& ctx) const {
    auto* s = dynamic_cast<S*>(state);
    TZ_CHECK(s, describe(), ": forward() was given a state not made by its make_state()");
    TZ_CHECK(ctx.start == s->length, describe(), ": the input starts at position ", ctx.start, " but the state holds ",
             s->length, " positions");
    return *s;
  }
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
  // A relative score bias as data: the table [H, T + S - 1] whose column S - 1 + i - j biases
  // query i and key j, the query sitting at key position q_offset + i (distance
  // q_offset + i - j). ALiBi and T5 buckets are such tables; the attention core reads them
  // densely on the composite path and per tile in the fused kernel, so no [T, S] bias is
  // stored. `ctx` (null outside a model) lets a scheme compute it once per forward and share
  // it with every layer through ctx->carry (T5). A scheme that wraps another must pass ctx on.
  virtual Tensor score_bias(int64_t heads, int64_t q_offset, int64_t T, int64_t S, DType dtype,
                            const MixerContext* ctx = nullptr) const {
    return Tensor();
  }
  virtual bool biases_scores() const { return false; }
  // A score term that depends on the projected queries/keys [B, H, T, D] / [B, H, S, D]
  // (Transformer-XL's content-position and position-bias terms, TUPE): [B, H, T, S], for
  // queries at q_start.. and keys at k_start... Undefined when the scheme has none. Being a
  // function of q and k, it is materialised: attention takes the composite path with it.
  // `ctx` as for score_bias (Transformer-XL's per-layer W_{k,R}; TUPE's shared position term).
  virtual Tensor query_score_bias(const Tensor& q, const Tensor& k, int64_t q_start, int64_t k_start,
                                  const MixerContext* ctx = nullptr) const {
    return Tensor();
  }
  virtual bool biases_with_queries() const { return false; }
  // The same query-dependent term as score terms of the attention core (SdpaSpec's relative
  // keys, pair product, scale, relative bias table), which the fused kernel evaluates tile
  // by tile: no [T, S] tensor, and k, v of G heads read in place. May replace q (q [B, H, T,
  // D] at positions q_start.., S keys at k_start..), as Transformer-XL's (q + u) . k does.
  // Returns false when the scheme has no such form: query_score_bias is materialised then.
  virtual bool score_terms(Tensor& q, int64_t S, int64_t q_start, int64_t k_start, SdpaSpec& spec,
                           const MixerContext* ctx = nullptr) const {
    return false;
  }
  // A term of each head's output read from the attention weights (Shaw et al.'s relative
  // values, z_i = sum_j a_ij (v_j + a^V_{j-i})): probs [B, H, T, S] of queries at key
  // positions q_offset.. over keys 0..S-1 -> [B, H, T, D], added to sum_j a_ij v_j.
  // Undefined when the scheme has none. It needs the weights: attention takes the composite
  // path with it. `ctx` as for score_bias.
  virtual Tensor value_term(const Tensor& probs, int64_t q_offset, const MixerContext* ctx = nullptr) const {
    return Tensor();
  }
  virtual bool biases_values() const { return false; }
  // The longest position it can represent (0 = unbounded).
  virtual int64_t max_positions() const { return 0; }
};

}  // namespace tz::nn
