#include "models/gpt.h"

#include <nlohmann/json.hpp>

#include "models/zoo.h"

namespace tz::models {

std::string GPTConfig::to_json() const {
  // Model-level keys always; component keys only where they differ from the components'
  // defaults, so that a config layered on top may swap the FFN or norm freely.
  nlohmann::json j = {{"vocab", vocab}, {"dim", dim},   {"depth", depth},     {"heads", heads},
                      {"context", context}, {"bias", bias}, {"dropout", dropout}, {"tie_weights", tie_weights}};
  if (mlp_mult != 4) j["ffn_mult"] = mlp_mult;
  if (activation != "gelu") j["activation"] = activation;
  if (norm != "layernorm") j["norm"] = norm;
  return j.dump();
}

GPT::GPT(const GPTConfig& c, Generator& gen)
    : LM(nn::Config::parse(c.to_json(), "GPTConfig"), zoo::registry(), gen), config(c) {}

}  // namespace tz::models
