// A block of the zoo's models: a list of sublayers, each {norm, function, residual}. With
// x [B, T, C] the stream (B batch, T positions, C width), sublayer i computes
//   x ← residual_i(x, norm_i, u ↦ scale_i · f_i(shift_i(u)))
// where f_i is a sequence mixer (attention, a recurrence, cross-attention to a context) or a
// position-wise FFN (whose output passes the ff_dropout site), shift_i the token shift
// (models/token_shift.h) and the residual kind (nn/residual/) decides where the norm sits.
// The layout (models/layout.h) decides which sublayers a block has; the LM's blocks name
// them norm0/ffn0 (Macaron's first FFN), norm1/mixer and norm2/ffn, the wrappers' blocks
// norm1/attn, norm_c/cross and norm2/ffn: these are the checkpoints' parameter names.
//
// Stateful like a mixer: forward(x, ctx, state) with a BlockState continues a sequence
// (each mixer's own state, and the last s normed inputs of each shifted sublayer).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"
#include "nn/registry.h"
#include "nn/residual/residual.h"

namespace tz::models {

// One sublayer as a layout plans it.
struct SublayerSpec {
  enum class Kind { mixer, ffn };
  Kind kind = Kind::mixer;
  std::string id;         // the mixer's or FFN's registry id
  std::string name;       // its module name: mixer, ffn, ffn0, attn, cross
  std::string norm_name;  // its norm's module name: norm0, norm1, norm2, norm_c
  std::string tag;        // suffix of the residual's parameters: alpha<tag>, gate<tag>
  double scale = 1.0;     // on the FFN output (Macaron's ½)
  int64_t shift = 0;      // token-shift amount s
  nn::ModelDims dims;     // what the function is built with (layer, causal, context_dim)
};

// Where a block gets its pieces: norms, FFNs and mixers from the registry by id, with the
// model's config. `mixer`, when set, builds the mixer sublayers instead (the wrappers'
// attention, models/wrapper_attention.h).
struct BlockPieces {
  const nn::Registry& registry;
  const nn::Config& config;
  std::string norm;         // norm id
  double ff_dropout = 0.0;  // on every FFN output
  std::function<std::shared_ptr<nn::Mixer>(const SublayerSpec&, Generator&)> mixer;
};

struct Sublayer {
  SublayerSpec spec;
  std::shared_ptr<nn::UnaryModule> norm;  // null when the residual kind has none
  std::shared_ptr<nn::Mixer> mixer;       // exactly one of mixer and ffn
  std::shared_ptr<nn::UnaryModule> ffn;
  std::shared_ptr<nn::Residual> residual;
};

// A block's state between calls: per sublayer, the mixer's state and the token-shift history.
struct BlockState : nn::MixerState {
  std::vector<std::unique_ptr<nn::MixerState>> mixers;
  std::vector<Tensor> hist;
  void visit(nn::StateVisitor& v) override {
    nn::MixerState::visit(v);
    for (size_t i = 0; i < mixers.size(); ++i)
      if (mixers[i]) v.nested(cat_str("mixer", i), *mixers[i]);
    for (size_t i = 0; i < hist.size(); ++i) v.tensor(cat_str("hist", i), hist[i]);
  }
};

// A block's segment memory for one call (models/segment_memory.h): what its mixer saw at
// earlier positions, and, after the call, what it saw in this one.
struct BlockMemory {
  Tensor memory;        // in: the mixer's inputs at the M positions before x [B, M, C]; undefined = none
  Tensor memory_valid;  // in: [B, M] i64, 0 = hidden; undefined = all real
  Tensor seen;          // out: the mixer's input in this call [B, T, C]
};

class Block : public nn::Module {
 public:
  Block(const std::vector<SublayerSpec>& sublayers, const BlockPieces& pieces, Generator& gen);
  // x [B, T, C] at positions ctx.start..; state (from make_state) continues a sequence;
  // memory (a block of one mixer sublayer, which takes memory) feeds it segment memory.
  Tensor forward(const Tensor& x, const nn::MixerContext& ctx, nn::MixerState* state = nullptr,
                 BlockMemory* memory = nullptr);
  // Why the block cannot take segment memory ("" when it can): its mixer sublayer.
  std::string why_no_memory() const;
  std::unique_ptr<nn::MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const;
  bool causal() const;              // every mixer is
  std::string why_no_step() const;  // "" when every mixer has a step form
  std::string describe() const override;
  // The sublayer whose function is called `name` (mixer, ffn, ffn0, attn, cross); throws.
  const Sublayer& sublayer(const std::string& name) const;

  std::vector<Sublayer> sublayers;
  std::shared_ptr<nn::Dropout> ff_drop;
  // For inspection: the block's mixer and its (last) FFN; null where absent.
  std::shared_ptr<nn::Mixer> mixer;
  std::shared_ptr<nn::UnaryModule> ffn;
};

}  // namespace tz::models
