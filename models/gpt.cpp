#include "models/gpt.h"

#include <nlohmann/json.hpp>

#include "models/zoo.h"

namespace tz::models {

std::string GPTConfig::to_json() const {
  // Model-level keys always; component keys only where they differ from the components'
  // defaults, so that a config layered on top may swap the FFN or norm freely.
  nlohmann::json j = {{"vocab", vocab},     {"dim", dim},   {"depth", depth},     {"heads", heads},
                      {"context", context}, {"bias", bias}, {"dropout", dropout}, {"tie_weights", tie_weights}};
  if (mlp_mult != 4) j["ffn_mult"] = mlp_mult;
  if (activation != "gelu") j["activation"] = activation;
  if (norm != kNorm.fallback) j["norm"] = norm;
  return j.dump();
}

nn::Config GPTConfig::to_config() const { return nn::Config::parse(to_json(), "GPTConfig"); }

GPT::GPT(const GPTConfig& c, Generator& gen) : LM(c.to_config(), zoo::registry(), gen), config(c) {}

}  // namespace tz::models

namespace tz::zoo {

void register_gpt(nn::Registry& r) {
  r.add({.id = "gpt",
         .summary = "Decoder-only LM: token + learned positions, pre-norm attention/MLP blocks, tied head",
         .keys = models::lm_config_keys(),
         .test_config = "{}",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "context": 256})"});
}

}  // namespace tz::zoo
