#include "models/zoo.h"

// Every registration function, from the per-family lists.
namespace tz::zoo {
#define TZ_VARIANT(id) void register_##id(nn::Registry&);
#include "models/variants.def"
#include "nn/attention/variants.def"
#include "nn/ffn/variants.def"
#include "nn/norm/variants.def"
#include "nn/position/variants.def"
#undef TZ_VARIANT

const nn::Registry& registry() {
  static const nn::Registry r = [] {
    nn::Registry reg;
#define TZ_VARIANT(id) register_##id(reg);
#include "models/variants.def"
#include "nn/attention/variants.def"
#include "nn/ffn/variants.def"
#include "nn/norm/variants.def"
#include "nn/position/variants.def"
#undef TZ_VARIANT
    return reg;
  }();
  return r;
}

std::unique_ptr<models::LM> make_lm(const std::string& config_json, Generator& gen, const std::string& source) {
  return std::make_unique<models::LM>(nn::Config::parse(config_json, source), registry(), gen);
}

}  // namespace tz::zoo
