// The populated variant registry and helpers to build zoo models by id.
#pragma once

#include <memory>
#include <string>

#include "models/lm.h"
#include "nn/registry.h"

namespace tz::zoo {

// Every registered variant (built once, on first use).
const nn::Registry& registry();

// Builds the zoo LM from a JSON config string.
std::unique_ptr<models::LM> make_lm(const std::string& config_json, Generator& gen,
                                    const std::string& source = "config");

}  // namespace tz::zoo
