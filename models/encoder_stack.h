// The layer stacks of the wrappers, made of the LM's blocks (models/block.h) with pieces from
// the registry: every block is [self-attention (norm1, attn); cross-attention (norm_c,
// cross), when the stack reads a context; FFN (norm2, ffn)], each sublayer joined by the
// residual kind of the config (pre-norm add by default):
//   x += Attn(norm1 x);  (x += CrossAttn(norm_c x, c);)  x += FFN(norm2 x)
// Self-attention is causal in decoders and bidirectional in encoders; padded keys
// (MixerContext::key_padding) are hidden from every query. The attention comes from
// models/wrapper_attention.h. Also here: the wrappers' shared config keys and the learned
// position table they use by default.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/block.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/registry.h"

namespace tz::models {

struct StackOptions {
  int64_t depth = 1;
  bool causal = false;      // self-attention
  int64_t context_dim = 0;  // > 0: cross-attention to a context of this width
};

// depth blocks over dims (dim, heads, bias, dropout), with the config's mixer, ffn, norm and
// residual keys.
std::shared_ptr<nn::ModuleList> make_stack(const StackOptions& options, const nn::ModelDims& dims,
                                           const nn::Registry& registry, const nn::Config& config, Generator& gen);
// Runs the stack's blocks over h [B, T, C]; ctx carries positions, key padding and context.
Tensor run_stack(const nn::ModuleList& stack, Tensor h, nn::MixerContext ctx);

// Learned absolute positions whose table is the module's own `weight` [L, C] (the wrappers'
// checkpoints name it pos.weight / pos_enc.weight); learned_abs_pe computes the same.
class PositionTable : public nn::PositionScheme {
 public:
  PositionTable(int64_t positions, int64_t dim, Generator& gen);
  Tensor embed(int64_t start, int64_t T, DType dtype) const override;
  int64_t max_positions() const override { return weight.size(0); }
  std::string describe() const override;
  Tensor weight;

 private:
  std::shared_ptr<nn::Embedding> table_;  // holds `weight`
};

// A wrapper's position scheme: its own table for learned_abs_pe (the default), else the
// registry's scheme.
std::shared_ptr<nn::PositionScheme> make_wrapper_positions(const nn::ModelDims& dims, const nn::Registry& registry,
                                                           const nn::Config& config, Generator& gen);

// The keys every wrapper reads besides its own (components, residual kinds, bias, dropout).
std::vector<nn::ConfigKey> stack_keys();
// A wrapper's own keys followed by stack_keys() (its registry entry lists both).
std::vector<nn::ConfigKey> wrapper_keys(std::vector<nn::ConfigKey> own);
// Rejects unread keys: `own` plus stack_keys() plus the chosen components' keys.
void check_wrapper_keys(const nn::Config& config, const nn::Registry& registry, const std::vector<nn::ConfigKey>& own);
// Reads `model` (absent, or one of `ids`), so that a config naming the wrapper is accepted.
void check_model_key(const nn::Config& config, const std::vector<std::string>& ids);

}  // namespace tz::models
