// The zoo's language model: embed → blocks → head. Shapes: B batch, T positions, C width,
// V vocabulary.
//
//   h = drop_emb(tok_emb[ids] (+ pos.embed))                         [B, T, C]
//   h = block_{schedule[n]}(h) for each application n                (models/block.h)
//   logits = final_norm(h) W^T     (W = tok_emb.weight when tied)     [B, T, V]
//
// Each block is a list of sublayers {norm, function, residual} whose mixer, FFN and norm are
// chosen by id from the registry; everything else is an option in its own file:
//   layout (interleaved, sandwich, macaron, explicit s/f, per-layer mixers)   models/layout.h
//   residual kinds (add pre/post-norm, rezero, gtrxl)                         nn/residual/
//   token shift                                                               models/token_shift.h
//   Universal Transformer (one shared block, P^t per step)                    models/universal.h
//   ACT halting over the shared block                                         models/act.h
//   Forgetful Causal Masking (training only)                                  models/fcm.h
//   memory tokens (a learned prefix, stripped before the head)                models/memory_tokens.h
//   segment memory (Transformer-XL, compressive memory, ERNIE-Doc)            models/segment_memory.h
//   emb_dropout, ff_dropout, dropout: inverted dropout after the embedding, on the FFN branch
//   and inside the components (residual dropout); final_norm: the norm before the head.
// Parameter names: tok_emb, pos, layers.<i>.{norm0,ffn0,norm1,mixer,norm2,ffn,alpha<k>,
// gate<k>}, norm_f, head, halt, memory_tokens, memory.compress<n>.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/act.h"
#include "models/block.h"
#include "models/model.h"
#include "models/segment_memory.h"
#include "models/universal.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"

namespace tz::models {

class LM : public Model {
 public:
  // Builds from a parsed config (keys in models/keys.h and the option files); unknown keys
  // throw naming them.
  LM(const nn::Config& config, const nn::Registry& registry, Generator& gen);
  using Model::forward;
  using Model::loss;
  // {ids i64 [B, T]} → logits [B, T, V]; with a state, ids continue the sequence it holds.
  Tensor forward(const std::vector<Tensor>& inputs, State* state = nullptr, nn::AuxLosses* aux = nullptr) override;
  int causal_input() const override;
  std::string why_not_causal() const override { return causal_input() < 0 ? "a mixer is not causal (by design)" : ""; }
  std::string why_no_step() const override;
  State make_state(int64_t batch, int64_t capacity) const override;
  bool has_memory() const override { return memory != nullptr; }
  State make_memory(int64_t batch) const override;
  // Segment memory's parallel form: one forward over ids [B, T] in which every layer's
  // queries see the keys a segment-by-segment run of segments of `segment` positions would
  // show them (the block staircase of ctx.segment, with each layer's memory length). Only
  // for memory that is a window of the past (no compression, no shift_mem_down).
  Tensor forward_staircase(const Tensor& ids, int64_t segment);
  int64_t vocab() const override { return vocab_; }
  int64_t context() const override { return dims_.context; }
  std::string describe() const override;

  const nn::ModelDims& dims() const { return dims_; }
  // The embedding output at positions start.. (after emb_dropout when training).
  Tensor embed(const Tensor& ids, int64_t start);
  // Block application n → block index (the same block repeats under share_layers / act).
  const std::vector<int64_t>& schedule() const { return schedule_; }

  std::shared_ptr<nn::Embedding> tok_emb;
  std::shared_ptr<nn::PositionScheme> pos;
  std::shared_ptr<nn::ModuleList> layers;   // of Block
  std::shared_ptr<nn::UnaryModule> norm_f;  // null without a final norm
  std::shared_ptr<nn::Linear> head;         // null when tied
  std::shared_ptr<nn::Linear> halt;         // ACT's halting unit (C → 1), null without act
  std::shared_ptr<nn::Dropout> emb_drop;
  Tensor memory_tokens;                       // [m, C], undefined without memory tokens
  std::shared_ptr<SegmentRecurrence> memory;  // null without segment memory
  ActTrace last_act;
  // Called by every forward with the final features [B, T, C] (the normed stream the head
  // reads): kNN-LM's keys (models/knn_lm.h). Empty: nothing is called.
  std::function<void(const Tensor&)> feature_tap;

 private:
  Tensor logits(const Tensor& h);
  Tensor head_of(const Tensor& x);  // the head over the normed stream x
  // forward() with segment memory: one segment (training), or decoding across segments.
  Tensor forward_segments(const Tensor& ids, State& state, nn::AuxLosses* aux);
  // Refuses what segment memory cannot combine with, naming the keys.
  void check_memory(const nn::Config& config) const;
  // Runs the schedule of blocks over h (positions ctx.start..); state null = from scratch.
  Tensor run_blocks(Tensor h, nn::MixerContext& ctx, State* state);

  nn::ModelDims dims_;
  int64_t vocab_ = 0;
  std::string pos_id_;
  std::vector<int64_t> schedule_;  // block index per application
  std::vector<std::shared_ptr<Block>> blocks_;
  Recurrence recurrence_;
  bool act_ = false;
  ActOptions act_options_;
  double fcm_ratio_ = 0.0;
  int64_t mem_ = 0;  // memory tokens m
};

// Every config key the LM and its options read (for `tensorzoo info gpt` and the list of
// valid keys); the chosen components' keys come from their registry entries.
std::vector<nn::ConfigKey> lm_config_keys();

}  // namespace tz::models
