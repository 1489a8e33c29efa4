// The one interface of the zoo's whole models: the language model (models/lm.h) and the
// wrappers (encoder-decoder, ViT, continuous input). The trainer, the generator, the arena
// and the conformance suite speak only this.
//
// A model maps a list of inputs to one output: an LM {ids [B, T]} → logits [B, T, V]; the
// encoder-decoder {src, src_mask, tgt} → logits over tgt; ViT {img} → class logits; the
// continuous wrapper {x, mask (, context, context_mask)} → values. One forward covers every
// use, as for the mixers (nn/mixer.h): no state = the whole sequence from scratch; a state
// from make_state = continue it, whether the input is a prefill chunk, the next training
// segment or one decoding step. The state's `length` is the one position counter.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "nn/config.h"
#include "nn/mixer.h"
#include "nn/module.h"

namespace tz::models {

class Model : public nn::Module {
 public:
  // The inputs of one batch and what the model should predict from them (next tokens with
  // -100 = ignored, class ids, or values).
  struct Batch {
    std::vector<Tensor> inputs;
    Tensor targets;
  };
  // A sequence in progress: one mixer state per block application, and the position of the
  // next input; with segment memory (models/segment_memory.h) also the memory. A state of
  // memory alone (make_memory: no layers) trains across segments: each forward is a segment.
  struct State {
    std::vector<std::unique_ptr<nn::MixerState>> layers;
    int64_t length = 0;
    std::unique_ptr<nn::MixerState> memory;  // null without segment memory
  };

  // The output for `inputs`; with a state, the inputs continue the sequence it holds and
  // state->length advances. Auxiliary losses (ponder cost, span penalty) go to *aux.
  virtual Tensor forward(const std::vector<Tensor>& inputs, State* state = nullptr, nn::AuxLosses* aux = nullptr) = 0;
  Tensor forward(const Tensor& input, State* state = nullptr, nn::AuxLosses* aux = nullptr) {
    return forward(std::vector<Tensor>{input}, state, aux);
  }
  // The training objective over the next segment of the sequences `memory` carries (a state
  // from make_memory; the memory advances).
  Tensor loss(const Batch& batch, State& memory);
  // Decoding and prefill: forward() continuing `state`.
  Tensor step(const Tensor& input, State& state) { return forward(input, &state); }

  // The training objective: mean cross-entropy of the output's last dimension against the
  // targets (-100 ignored) plus the auxiliary losses. Wrappers with other targets override it.
  virtual Tensor loss(const Batch& batch);
  Tensor loss(const Tensor& inputs, const Tensor& targets) { return loss(Batch{{inputs}, targets}); }

  // The input whose positions (dim 1) map causally onto the output's positions (dim 1), or -1
  // with why_not_causal() saying why.
  virtual int causal_input() const = 0;
  virtual std::string why_not_causal() const { return ""; }
  bool causal() const { return causal_input() >= 0; }
  // Whether forward() accepts a state; why_no_step() says why not ("" when it does).
  bool has_step() const { return why_no_step().empty(); }
  virtual std::string why_no_step() const = 0;
  // A fresh state for `batch` sequences of at most `capacity` positions (throws without a step
  // form). A model with segment memory decodes sequences of any length.
  virtual State make_state(int64_t batch, int64_t capacity) const;
  // Segment memory: whether the model carries one, and a fresh one for `batch` sequences
  // (throws without).
  virtual bool has_memory() const { return false; }
  virtual State make_memory(int64_t batch) const;

  // A batch of the model's own small task (the wrappers: copy, classification, regression).
  // Language models have none: they learn the token tasks of data/tasks.h and text.
  virtual Batch sample(int64_t batch, Generator& gen) const;
  // The vocabulary of a token model (0 when the output is not over tokens).
  virtual int64_t vocab() const { return 0; }
  // The longest sequence it takes.
  virtual int64_t context() const = 0;
  // The config it was built from (saved in checkpoints).
  const nn::Config& config() const { return config_; }
  std::string config_json() const { return config_.dump(); }

 protected:
  explicit Model(const nn::Config& config) : config_(config) {}
  nn::Config config_;
};

// A state as named tensors ("length", "layers.<i>.<name>", "memory.<name>"), copied, and
// back into a state made by the same make_state / make_memory (throws naming what differs).
std::map<std::string, Tensor> save_model_state(const Model::State& state);
void restore_model_state(Model::State& state, const std::map<std::string, Tensor>& saved);

}  // namespace tz::models
