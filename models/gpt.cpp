#include "models/gpt.h"

#include <nlohmann/json.hpp>

#include "models/zoo.h"

namespace tz::models {

std::string GPTConfig::to_json() const {
  nlohmann::json j = {{"vocab", vocab},   {"dim", dim},         {"depth", depth},
                      {"heads", heads},   {"context", context}, {"mixer", "vanilla_mha"},
                      {"pos", "learned_abs_pe"}, {"ffn", "ffn_mlp"}, {"ffn_mult", mlp_mult},
                      {"activation", activation}, {"norm", norm}, {"bias", bias},
                      {"dropout", dropout}, {"tie_weights", tie_weights}};
  return j.dump();
}

GPT::GPT(const GPTConfig& c, Generator& gen)
    : LM(nn::Config::parse(c.to_json(), "GPTConfig"), zoo::registry(), gen), config(c) {}

}  // namespace tz::models
