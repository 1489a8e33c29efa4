#include "models/zoo.h"

#include "core/text.h"
#include "models/keys.h"

// Every registration function, from the per-family lists.
namespace tz::zoo {
#define TZ_VARIANT(id) void register_##id(nn::Registry&);
#include "models/all_variants.def"
#undef TZ_VARIANT

const nn::Registry& registry() {
  static const nn::Registry r = [] {
    nn::Registry reg;
#define TZ_VARIANT(id) register_##id(reg);
#include "models/all_variants.def"
#undef TZ_VARIANT
    return reg;
  }();
  return r;
}

std::shared_ptr<models::Model> make_model(const nn::Config& config, Generator& gen) {
  const std::string id = config.get(models::kModel);
  if (id == models::kModel.fallback) return std::make_shared<models::LM>(config, registry(), gen);
  const nn::VariantInfo& v = registry().get(id);
  TZ_CHECK(v.model, config.source(), ": model '", id, "' is a ", v.kind, " id, not a model");
  auto model = std::dynamic_pointer_cast<models::Model>(v.model(config, gen));
  TZ_CHECK(model, id, ": its model factory must build a models::Model");
  return model;
}

std::unique_ptr<models::LM> make_lm(const nn::Config& config, Generator& gen) {
  return std::make_unique<models::LM>(config, registry(), gen);
}

std::unique_ptr<models::LM> make_lm(const std::string& config_json, Generator& gen, const std::string& source) {
  return make_lm(nn::Config::parse(config_json, source), gen);
}

}  // namespace tz::zoo
