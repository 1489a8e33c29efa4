// The zoo's language model: token embeddings, a position scheme, a stack of blocks whose
// mixer / FFN / norm are chosen by id from the registry, and a head over the vocabulary.
// Shapes: B batch, T positions, C width, V vocabulary.
//
//   h = drop_emb(tok_emb[ids] (+ pos.embed))                                   [B, T, C]
//   pre-norm  (default):  h = h + mixer(norm1(h));  h = h + ffn(norm2(h))
//   post-norm:            h = norm1(h + mixer(h));  h = norm2(h + ffn(h))
//   logits = norm_f(h) W^T    (W = tok_emb.weight when tied; no norm_f in post-norm)  [B, T, V]
//
// The block stack is configurable (each option is a catalogue id, see `tensorzoo info ID`):
//   layout        "interleaved" (s f s f ...), "sandwich" (s^k (sf)^(n-k) f^k, Press et al.
//                 2020, arXiv:1911.03864) or an explicit string of 's' (mixer) and 'f' (FFN)
//                 sublayers; an 's' followed by an 'f' forms one block, a lone one its own block.
//   macaron       h += ½ffn0(norm0(h)); h += mixer(norm1(h)); h += ½ffn(norm2(h))  (arXiv:1906.02762)
//   residual      add: h + f(norm(h));  rezero: h + α f(h), α a scalar per sublayer initialised
//                 to 0 and no norms (arXiv:2003.04887);  gtrxl: the GRU gate g(h, relu(f(norm(h))))
//                 of GTrXL (arXiv:1910.06764), z's bias b_g = gtrxl_bias.
//   token_shift   s per block (or one for all): the normed input u of every sublayer is split
//                 into s+1 channel chunks and chunk c is delayed c steps (zeros before 0):
//                 u'_t[c] = u_{t-c}[c]  (RWKV's token shift; shift 0 = identity).
//   share_layers  the Universal Transformer (arXiv:1807.03819): one block applied
//                 recurrence_steps times, H^t = block(H^{t-1} + P^t), P^t = pos.embed + the
//                 sinusoid of step t (the position embedding is added per step, not at input).
//   act           Adaptive Computation Time over those steps (Graves, arXiv:1603.08983), below.
//   emb_dropout, ff_dropout, dropout: inverted dropout after the embedding, on the FFN branch,
//                 and inside the components (residual dropout).
//   fcm_max_ratio Forgetful Causal Masking (arXiv:2210.13432): in training only, per sequence
//                 r ~ U[0, η] and floor(r T) random positions j are hidden from every later
//                 query i > j (the query at j still sees itself); given to attention as an
//                 additive -inf score term through the position-scheme hook.
//
// ACT (per position t, steps n = 1..N_max, halting unit p_t^n = σ(w_h · h_t^n + b_h)):
//   N(t) = min{n : Σ_{n'≤n} p_t^{n'} ≥ 1 − ε} (or N_max),  R_t = 1 − Σ_{n<N(t)} p_t^n
//   y_t  = Σ_{n<N(t)} p_t^n h_t^n + R_t h_t^{N(t)}       (the weights sum to 1)
//   ponder cost τ · mean_t (N(t) + R_t), added to the aux losses.
//   A position that has halted keeps its state unchanged in later steps (the UT's copy), so
//   later positions still attend to it. Deviation: the ponder cost is a mean over positions
//   and batch, not a sum, so τ does not depend on the sequence length.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::models {

// What every model of the zoo offers the trainer, the generator and the conformance suite.
class SequenceModel : public nn::Module {
 public:
  struct State {
    std::vector<std::unique_ptr<nn::MixerState>> layers;
    int64_t length = 0;
  };
  // ids i64 [B, T] → logits [B, T, vocab]. Auxiliary losses are added to *aux when given.
  virtual Tensor forward(const Tensor& ids, nn::AuxLosses* aux = nullptr) = 0;
  // Mean next-token cross-entropy over targets i64 [B, T] (-100 ignored) plus aux losses.
  virtual Tensor loss(const Tensor& ids, const Tensor& targets);
  virtual bool causal() const = 0;
  virtual bool has_step() const = 0;
  virtual std::string why_no_step() const { return ""; }
  virtual State make_state(int64_t batch, int64_t capacity) const = 0;
  // ids [B, T'] continuing the sequence in `state` → logits [B, T', vocab].
  virtual Tensor step(const Tensor& ids, State& state) = 0;
  virtual int64_t vocab() const = 0;
  virtual int64_t context() const = 0;
  // The config the model was built from (saved in checkpoints).
  virtual std::string config_json() const = 0;
};

enum class Residual { add, rezero, gtrxl };

// GTrXL's GRU-type gate g(x, y) (arXiv:1910.06764, eq. 9), x the stream, y the branch:
//   r = σ(W_r y + U_r x),  z = σ(W_z y + U_z x − b_g),  ĥ = tanh(W_g y + U_g (r ⊙ x))
//   g = (1 − z) ⊙ x + z ⊙ ĥ
class GRUGate : public nn::Module {
 public:
  GRUGate(int64_t dim, double bg, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& y) const;
  Tensor update_gate(const Tensor& x, const Tensor& y) const;  // z, for the proof
  std::string describe() const override;
  std::shared_ptr<nn::Linear> wr, ur, wz, uz, wg, ug;
  double bg;
};

struct BlockOptions {
  bool has_mixer = true, has_ffn = true;
  bool macaron = false;     // a first half-step FFN before the mixer
  bool post_norm = false;
  Residual residual = Residual::add;
  double gtrxl_bias = 2.0;
  int64_t shift = 0;        // token-shift amount s
  double ff_dropout = 0.0;  // on the FFN branch output
};

// A block's decoding state: the mixer's own state and, with token shift, the last s normed
// inputs of each sublayer (sublayer 0 = macaron FFN, 1 = mixer, 2 = FFN).
struct BlockState : nn::MixerState {
  std::unique_ptr<nn::MixerState> mixer;
  Tensor hist[3];
  void visit(nn::StateVisitor& v) override {
    nn::MixerState::visit(v);
    if (mixer) v.nested("mixer", *mixer);
    for (int i = 0; i < 3; ++i) v.tensor(cat_str("hist", i), hist[i]);
  }
};

class LMBlock : public nn::Module {
 public:
  LMBlock(const nn::ModelDims& dims, const nn::Config& config, const nn::Registry& registry,
          const std::string& mixer_id, const BlockOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const nn::MixerContext& ctx);
  // Continues the sequence in `state` (a BlockState made by make_state).
  Tensor step(const Tensor& x, nn::MixerState& state, const nn::MixerContext& ctx);
  std::unique_ptr<nn::MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const;
  std::string describe() const override;
  std::shared_ptr<nn::UnaryModule> norm0, norm1, norm2;  // null where absent (rezero, missing sublayer)
  std::shared_ptr<nn::UnaryModule> ffn0;                 // macaron's first FFN
  std::shared_ptr<nn::Mixer> mixer;
  std::shared_ptr<nn::UnaryModule> ffn;
  std::shared_ptr<GRUGate> gate0, gate1, gate2;
  std::shared_ptr<nn::Dropout> ff_drop;
  Tensor alpha0, alpha1, alpha2;  // rezero gains
  bool post_norm = false;
  std::string mixer_id;
  BlockOptions options;

 private:
  // One residual sublayer: which = 0 (macaron FFN), 1 (mixer), 2 (FFN).
  Tensor sublayer(int which, const Tensor& x, BlockState* state, const nn::MixerContext& ctx);
};

// Token shift of u [B, T, C] by s: chunk c of s+1 channel chunks is delayed c steps. `hist`
// [B, s, C] holds the s inputs before u (zeros at the start); when given it is replaced by
// the last s inputs, so decoding step by step matches the parallel form.
Tensor token_shift(const Tensor& u, int64_t s, Tensor* hist = nullptr);

// What the last ACT forward did (detached; for tests and inspection).
struct ActTrace {
  Tensor weight_sum;           // Σ_n weights per position [B, T, 1] (exactly 1)
  Tensor steps;                // N(t) [B, T, 1]
  Tensor remainder;            // R_t [B, T, 1]
  std::vector<Tensor> states;  // h^n after each step n [B, T, C]
  Tensor ponder;               // the ponder cost added to the aux losses (with its graph)
};

class LM : public SequenceModel {
 public:
  // Builds from a JSON config (see the header comment); unknown keys throw naming them.
  LM(const nn::Config& config, const nn::Registry& registry, Generator& gen);
  Tensor forward(const Tensor& ids, nn::AuxLosses* aux = nullptr) override;
  bool causal() const override;
  bool has_step() const override;
  std::string why_no_step() const override;
  State make_state(int64_t batch, int64_t capacity) const override;
  Tensor step(const Tensor& ids, State& state) override;
  int64_t vocab() const override { return vocab_; }
  int64_t context() const override { return dims_.context; }
  std::string config_json() const override { return config_.dump(); }
  std::string describe() const override;

  const nn::ModelDims& dims() const { return dims_; }
  // The embedding output at positions start.. (after emb_dropout when training).
  Tensor embed(const Tensor& ids, int64_t start);
  // The additive FCM score mask [B, 1, T, T] (0 or -inf) drawn for one training batch;
  // undefined when no position is hidden.
  Tensor fcm_mask(int64_t B, int64_t T, DType dtype, Generator& gen) const;
  // Block i of the schedule (the same block repeats under share_layers / act).
  const std::vector<int64_t>& schedule() const { return schedule_; }

  std::shared_ptr<nn::Embedding> tok_emb;
  std::shared_ptr<nn::PositionScheme> pos;
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::UnaryModule> norm_f;  // null in post-norm and rezero models
  std::shared_ptr<nn::Linear> head;         // null when tied
  std::shared_ptr<nn::Linear> halt;         // ACT's halting unit (C → 1), null without act
  std::shared_ptr<nn::Dropout> emb_drop;
  ActTrace last_act;

 private:
  Tensor logits(const Tensor& h);
  // Runs the block schedule over h (positions start..); states null in the parallel form.
  Tensor run_blocks(Tensor h, int64_t start, nn::MixerContext& ctx, State* state);
  // P^t of the Universal Transformer: positions start..start+T-1 and step n: [T, C].
  Tensor step_signal(int64_t start, int64_t T, int64_t n, DType dtype) const;

  nn::Config config_;
  nn::ModelDims dims_;
  int64_t vocab_ = 0;
  std::vector<int64_t> schedule_;  // block index per application
  bool universal_ = false;         // share_layers: P^t added before each application
  bool act_ = false;
  double act_eps_ = 0.01, ponder_tau_ = 0.01;
  double fcm_ratio_ = 0.0;
};

// The model-level config keys LM reads, with defaults and docs (for `tensorzoo info`).
std::vector<nn::ConfigKey> lm_config_keys();

}  // namespace tz::models
