#include "nn/residual/residual.h"

#include "core/text.h"
#include "nn/residual/mixer_scope.h"

namespace tz::nn {

#define TZ_RESIDUAL(name) const ResidualKind& residual_kind_##name();
#include "nn/residual/kinds.def"
#undef TZ_RESIDUAL

namespace {
thread_local bool t_mixer_sublayer = true;

const std::vector<const ResidualKind*>& kinds() {
  static const std::vector<const ResidualKind*> all = {
#define TZ_RESIDUAL(name) &residual_kind_##name(),
#include "nn/residual/kinds.def"
#undef TZ_RESIDUAL
  };
  return all;
}
}  // namespace

MixerSublayer::MixerSublayer(bool mixer) : previous_(t_mixer_sublayer) { t_mixer_sublayer = mixer; }
MixerSublayer::~MixerSublayer() { t_mixer_sublayer = previous_; }
bool building_mixer_sublayer() { return t_mixer_sublayer; }

std::unique_ptr<Residual> make_residual(const ModelDims& dims, const Config& config) {
  const std::string name = config.get(kResidual);
  const ResidualKind* chosen = nullptr;
  std::vector<std::string> names;
  for (const ResidualKind* k : kinds()) {
    names.push_back(k->name);
    if (k->name == name) chosen = k;
  }
  TZ_CHECK(chosen, config.source(), ": residual must be one of ", join(names), ", got '", name, "'");
  for (const ResidualKind* k : kinds())
    if (k != chosen)
      for (const ConfigKey& key : k->keys)
        TZ_CHECK(!config.has(key.key), config.source(), ": '", key.key, "' belongs to residual '", k->name,
                 "', but residual is '", name, "'");
  return chosen->make(dims, config);
}

std::vector<ConfigKey> residual_config_keys() {
  std::vector<ConfigKey> out{kResidual};
  for (const ResidualKind* k : kinds()) out.insert(out.end(), k->keys.begin(), k->keys.end());
  return out;
}

}  // namespace tz::nn
