// The populated variant registry and the factory of the zoo's models.
#pragma once

#include <memory>
#include <string>

#include "models/lm.h"
#include "models/model.h"
#include "nn/config.h"
#include "nn/registry.h"

namespace tz::zoo {

// Every registered variant (built once, on first use).
const nn::Registry& registry();

// The model a parsed config names with `model` (models/keys.h): the LM (gpt, the default) or
// a wrapper registered with a model factory.
std::shared_ptr<models::Model> make_model(const nn::Config& config, Generator& gen);
// The LM of a parsed config.
std::unique_ptr<models::LM> make_lm(const nn::Config& config, Generator& gen);
// Parses JSON text, then make_lm (for tests and examples; the CLI hands a parsed config down).
std::unique_ptr<models::LM> make_lm(const std::string& config_json, Generator& gen,
                                    const std::string& source = "config");

}  // namespace tz::zoo
