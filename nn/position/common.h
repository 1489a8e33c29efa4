// Small helpers shared by the position schemes of this folder.
#pragma once

#include <functional>
#include <string>

#include "nn/mixer.h"

namespace tz::nn {

// Computes a position term once per forward and shares it with every layer: the first layer
// stores it in ctx->carry under `key` (which must name everything the value depends on,
// e.g. positions and dtype), later layers read it back. Without a carry map it just computes.
Tensor carry_once(const MixerContext* ctx, const std::string& key, const std::function<Tensor()>& compute);

}  // namespace tz::nn
