#include "models/weights.h"

#include <filesystem>

#include "models/zoo.h"

namespace tz::models {

namespace fs = std::filesystem;

WeightsDType parse_weights_dtype(std::string_view name) {
  if (name == "f32") return WeightsDType::f32;
  if (name == "bf16") return WeightsDType::bf16;
  throw Error(cat_str("weights dtype '", std::string(name.substr(0, 40)), "' is not one of: f32, bf16"));
}

const char* weights_dtype_name(WeightsDType dtype) { return dtype == WeightsDType::bf16 ? "bf16" : "f32"; }

namespace {
std::string meta(const TensorFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  return it == f.metadata.end() ? std::string() : it->second;
}
}  // namespace

ModelFile read_model_file(const std::string& path) {
  std::error_code ec;
  TZ_CHECK(fs::exists(path, ec), "load: no file '", path, "'");
  TZ_CHECK(!fs::is_directory(path, ec), "load: '", path,
           "' is a directory; a model is a file: a run's checkpoint.safetensors, or the weights that "
           "`tensorzoo export --run DIR --out model.safetensors` writes");
  TensorFile f;
  try {
    f = load_safetensors(path);
  } catch (const Error& e) {
    throw Error(cat_str("load: '", path, "' is not a model file: ", e.what()));
  }
  ModelFile m;
  m.path = path;
  m.format = meta(f, "format");
  const std::string expected = cat_str("'", kWeightsFormat, "' or '", kTrainCheckpointFormat, "'");
  TZ_CHECK(!m.format.empty(), "load: '", path,
           "' is a safetensors file but not a tensorzoo model: its metadata has no ", "'format' (expected ", expected,
           ")");
  const std::string version = meta(f, "format_version");
  if (m.format == kWeightsFormat) {
    TZ_CHECK(version == std::to_string(kWeightsVersion), "load: '", path, "': weights format version '",
             version.substr(0, 20), "' is not supported (this build reads version ", kWeightsVersion, ")");
    m.weights = std::move(f.tensors);
  } else if (m.format == kTrainCheckpointFormat) {
    TZ_CHECK(version == std::to_string(kTrainCheckpointVersion), "load: '", path, "': checkpoint format version '",
             version.substr(0, 20), "' is not supported (this build reads version ", kTrainCheckpointVersion, ")");
    for (auto& [name, t] : f.tensors)  // the weights; the optimizer's moments and the rest stay behind
      if (name.rfind("model.", 0) == 0) m.weights[name.substr(6)] = t;
  } else {
    throw Error(cat_str("load: '", path, "': format '", m.format.substr(0, 60), "' is not a model file (expected ",
                        expected, ")"));
  }
  const std::string config = meta(f, "config");
  TZ_CHECK(!config.empty(), "load: '", path, "': metadata has no 'config' (the model config)");
  m.config = nn::Config::parse(config, cat_str("load: '", path, "': config"));
  if (f.metadata.count("tokenizer")) m.tokenizer = f.metadata.at("tokenizer");
  TZ_CHECK(m.tokenizer == kByteTokenizer, "load: '", path, "': tokenizer '", m.tokenizer.substr(0, 60),
           "' is not supported by this build (it reads: ", kByteTokenizer, ")");
  m.metadata = std::move(f.metadata);
  return m;
}

std::unique_ptr<LM> load_lm(const nn::Config& config, const std::map<std::string, Tensor>& weights,
                            const std::string& source) {
  Generator gen(0);  // the initial values are all replaced
  std::unique_ptr<LM> model;
  try {
    model = zoo::make_lm(config, gen);
    model->load_state_dict(weights);
  } catch (const Error& e) {
    throw Error(cat_str(source, ": ", e.what()));
  }
  model->eval();
  return model;
}

std::unique_ptr<LM> load_lm(const ModelFile& file) {
  return load_lm(file.config, file.weights, cat_str("load: '", file.path, "'"));
}

std::unique_ptr<LM> load_lm(const std::string& path) { return load_lm(read_model_file(path)); }

void save_weights(const std::string& path, const Model& model, WeightsDType dtype,
                  const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> meta = extra;
  meta["format"] = kWeightsFormat;
  meta["format_version"] = std::to_string(kWeightsVersion);
  meta["config"] = model.config_json();
  meta["tokenizer"] = kByteTokenizer;
  meta["dtype"] = weights_dtype_name(dtype);
  save_safetensors(path, model.state_dict(), meta, dtype == WeightsDType::bf16 ? StoreF32::bf16 : StoreF32::f32);
}

}  // namespace tz::models
