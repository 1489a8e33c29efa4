// The zoo's language model: token embeddings, a position scheme, a stack of blocks whose
// mixer / FFN / norm are chosen by id from the registry, and a head over the vocabulary.
//
//   h = tok_emb[ids] (+ pos.embed)
//   pre-norm  (default):  h = h + mixer(norm1(h));  h = h + ffn(norm2(h))
//   post-norm:            h = norm1(h + mixer(h));  h = norm2(h + ffn(h))
//   logits = norm_f(h) W^T    (W = tok_emb.weight when tied; no norm_f in post-norm)
//
// Config keys (flat, x-transformers style; components add their own, see `tensorzoo info`):
//   vocab, dim, depth, heads, context, mixer (an id, or a list with one id per layer),
//   pos, ffn, norm, norm_placement (pre | post), tie_weights, bias, dropout.
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

class LMBlock : public nn::Module {
 public:
  LMBlock(const nn::ModelDims& dims, const nn::Config& config, const nn::Registry& registry,
          const std::string& mixer_id, Generator& gen);
  Tensor forward(const Tensor& x, const nn::MixerContext& ctx);
  Tensor step(const Tensor& x, nn::MixerState& state, const nn::MixerContext& ctx);
  std::string describe() const override;
  std::shared_ptr<nn::UnaryModule> norm1, norm2;
  std::shared_ptr<nn::Mixer> mixer;
  std::shared_ptr<nn::UnaryModule> ffn;
  bool post_norm = false;
  std::string mixer_id;
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
  std::shared_ptr<nn::Embedding> tok_emb;
  std::shared_ptr<nn::PositionScheme> pos;
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::UnaryModule> norm_f;  // null in post-norm models
  std::shared_ptr<nn::Linear> head;         // null when tied

 private:
  Tensor embed(const Tensor& ids, int64_t start);
  Tensor logits(const Tensor& h);

  nn::Config config_;
  nn::ModelDims dims_;
  int64_t vocab_ = 0;
};

// The model-level config keys LM reads, with defaults and docs (for `tensorzoo info`).
std::vector<nn::ConfigKey> lm_config_keys();

}  // namespace tz::models
