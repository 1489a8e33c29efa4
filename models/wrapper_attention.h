// The attention sublayers of the wrappers (encoder self-attention, decoder self-attention,
// cross-attention), built in this one place: the registry's attention mixer named by the
// config's `mixer` (vanilla_mha by default, nn/attention/attention.h), with
//   ModelDims::causal       false in encoders: bidirectional self-attention;
//   ModelDims::context_dim  > 0: cross-attention, keys and values from MixerContext::context;
// padded keys hidden through MixerContext::key_padding (self) or context_padding (cross).
// Every attention option (attn_* keys) works in every wrapper, and the parameters carry the
// registry attention's names (qkv, out for self-attention; q, kv, out for cross-attention).
#pragma once

#include <memory>

#include "models/block.h"
#include "nn/config.h"
#include "nn/registry.h"

namespace tz::models {

// The attention of one wrapper sublayer (spec.id from the registry, built with spec.dims).
// Throws when an encoder asks for a mixer that has no bidirectional form.
std::shared_ptr<nn::Mixer> make_wrapper_attention(const SublayerSpec& spec, const nn::Registry& registry,
                                                  const nn::Config& config, Generator& gen);

}  // namespace tz::models
