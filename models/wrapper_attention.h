// The attention sublayers of the wrappers (encoder self-attention, decoder self-attention,
// cross-attention), built in this one place.
//
// The target: the registry's attention mixer for all three, built with ModelDims::causal
// (false in encoders) and ModelDims::context_dim (> 0: cross-attention to
// MixerContext::context), honouring MixerContext::key_padding and context_padding, so that
// every attention option works in every wrapper.
//
// TEMPORARY, until the registry's attention has its bidirectional and cross-attention modes
// (the attention pipeline):
//   - cross-attention is nn::CrossAttention behind the Mixer interface (LegacyAttention);
//   - self-attention is LegacyAttention too unless the config selects the registry's
//     attention (it sets `mixer`, `pos` or an attn_* key): then the registry's mixer, made
//     bidirectional in encoders by its causal option, with key padding through
//     models/mask_adapter.h.
// LegacyAttention keeps the recorded checkpoints' parameter names (attn.q, attn.kv, attn.out).
// When the pipeline lands, make_wrapper_attention is registry.make_mixer(spec.id, spec.dims,
// config, gen) and LegacyAttention goes.
#pragma once

#include <memory>

#include "models/block.h"
#include "nn/config.h"
#include "nn/registry.h"

namespace tz::models {

// True when the config asks for the registry's attention in the wrappers.
bool wants_registry_attention(const nn::Config& config, const nn::Registry& registry);

// The attention of one wrapper sublayer (spec.dims.causal, spec.dims.context_dim).
std::shared_ptr<nn::Mixer> make_wrapper_attention(const SublayerSpec& spec, const nn::Registry& registry,
                                                  const nn::Config& config, Generator& gen);

}  // namespace tz::models
