// The Feedback Transformer: "Addressing Some Limitations of Transformers with Feedback
// Memory", Fan, Lavril, Grave, Joulin, Sukhbaatar 2020, arXiv:2002.09402. Shapes: B batch,
// T positions, C width, H heads, D = C / H, L layers.
//
// A standard transformer's layer l at step t reads only layer l - 1 at steps <= t, so a lower
// layer never sees what a higher one computed in the past. Here every layer reads one shared
// memory, a learned mix of all layers (the embedding is layer 0) at each past step:
//   m_s     = sum_{l=0..L} softmax(w)_l h_s^l                           (memory vector)
//   a       = norm1^l(h_t^{l-1})
//   z_t^l   = Attn(q = W_q^l a, keys/values W_k^l, W_v^l of [norm1^l(m_1) .. norm1^l(m_{t-1}); a])
//   h'      = h_t^{l-1} + W_o^l z_t^l,   h_t^l = h' + FFN^l(norm2^l(h'))   (pre-norm block)
//   logits_t = head(norm_f(h_t^L))
// so h_{t+1}^1 reads h_t^L through m_t: the model runs token by token, in training too (the
// graph holds every step; past keys enter the fused attention as at most log2(t) + 1 parts,
// merged exactly by log-sum-exp, so no step copies the whole past). Decoding caches each
// layer's keys and values of the memory.
//
// Deviations from the paper:
// - The context also holds the current state a (the paper writes the memory alone,
//   [m_{t-tau} .. m_{t-1}]): step 0 has a key, and a token reads itself, as the catalogue's
//   definition says.
// - Memory vectors pass through the layer's attention norm before W_k^l, W_v^l, as the
//   current state does under pre-norm, so that both kinds of key share a scale.
// - Positions are added to the token embeddings (learned by default); the paper uses
//   relative positions with an attention span tau. Here the memory covers the whole context.
// - With a state (decoding, continuation) the cached memory is a constant: gradients stay
//   within one forward call, as with any KV cache. `dropout` drops both branch outputs.
// - `feedback_memory: false` keeps the same weights but lets layer l read its own inputs
//   h_s^{l-1} instead of m_s: a standard causal transformer run step by step (the control of
//   the proof that information flows down through time).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"
#include "nn/layers.h"
#include "nn/registry.h"

namespace tz::models {

inline const nn::Key<bool> kFeedbackMemory{
    "feedback_memory", true,
    "Feedback Transformer: attend to the memory m_s = sum_l softmax(w)_l h_s^l (false: each layer to its own "
    "past inputs, a standard transformer)"};

class FeedbackLayer;

class FeedbackTransformer : public Model {
 public:
  FeedbackTransformer(const nn::Config& config, const nn::Registry& registry, Generator& gen);
  using Model::forward;
  using Model::loss;
  // {ids i64 [B, T]} → logits [B, T, V]; with a state, the ids continue its sequence.
  Tensor forward(const std::vector<Tensor>& inputs, State* state = nullptr, nn::AuxLosses* aux = nullptr) override;
  int causal_input() const override { return 0; }
  std::string why_no_step() const override { return ""; }
  State make_state(int64_t batch, int64_t capacity) const override;
  // The copy task of data/tasks.h (its token layout), which the conformance suite teaches the
  // LM: a model built by its own factory is checked on its own task.
  Batch sample(int64_t batch, Generator& gen) const override;
  int64_t vocab() const override { return vocab_; }
  int64_t context() const override { return context_; }
  std::string describe() const override;

  // Called with every h_t^l (l = 0 the embedding .. L) at absolute position t; what it returns
  // replaces h_t^l (the proofs add a perturbation or keep a handle). Empty: nothing is called.
  std::function<Tensor(int64_t t, int64_t l, const Tensor& h)> tap;

  std::shared_ptr<nn::Embedding> tok_emb;
  std::shared_ptr<nn::PositionScheme> pos;
  std::shared_ptr<nn::ModuleList> layers;  // of FeedbackLayer
  std::shared_ptr<nn::UnaryModule> norm_f;
  std::shared_ptr<nn::Linear> head;  // null when tied
  Tensor layer_weights;              // w [L + 1]

 private:
  int64_t vocab_ = 0, dim_ = 0, depth_ = 0, heads_ = 0, context_ = 0;
  bool feedback_ = true;
};

std::vector<nn::ConfigKey> feedback_keys();

}  // namespace tz::models
