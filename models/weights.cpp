#include "models/weights.h"

#include <cstdio>
#include <filesystem>

#include "core/allocator.h"
#include "core/text.h"
#include "models/quantize.h"
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

std::string tokenizer_hash(const std::string& definition) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : definition) h = (h ^ uint64_t(static_cast<unsigned char>(c))) * 0x100000001b3ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

TokenizerData read_tokenizer_data(const std::map<std::string, std::string>& metadata, const std::string& path,
                                  const std::string* file_text) {
  auto get = [&](const char* key) {
    auto it = metadata.find(key);
    return it == metadata.end() ? std::string() : it->second;
  };
  TokenizerData t;
  if (metadata.count("tokenizer")) t.kind = get("tokenizer");
  // The kinds of data/tokenizer.h (this layer does not read tokenizers, only finds them).
  TZ_CHECK(t.kind == kByteTokenizer || t.kind == "bpe", "load: '", path, "': tokenizer '", t.kind.substr(0, 60),
           "' is not supported by this build (it reads: bytes, bpe)");
  if (t.kind == kByteTokenizer) return t;
  if (metadata.count("tokenizer_json")) {  // a weights file carries it
    t.definition = get("tokenizer_json");
    TZ_CHECK(!t.definition.empty(), "load: '", path, "': metadata 'tokenizer_json' (the ", t.kind,
             " tokenizer) is empty");
    return t;
  }
  // A checkpoint names the file beside it: a plain file name, never a path elsewhere.
  const std::string name = get("tokenizer_file"), hash = get("tokenizer_hash");
  TZ_CHECK(!name.empty(), "load: '", path, "': the ", t.kind,
           " tokenizer is in neither 'tokenizer_json' nor 'tokenizer_file' of its metadata");
  TZ_CHECK(name.find('/') == std::string::npos && name.find('\\') == std::string::npos && name != "." && name != "..",
           "load: '", path, "': metadata 'tokenizer_file' is '", name.substr(0, 60),
           "', expected a file name in the same directory (", kTokenizerFile, ")");
  const std::string file = (fs::path(path).parent_path() / name).string();
  if (file_text) {
    t.definition = *file_text;
  } else {
    std::error_code ec;
    TZ_CHECK(fs::is_regular_file(file, ec), "load: '", path, "' reads the ", t.kind, " tokenizer from ", file,
             ", which is missing; it is written with the run (a copy of the run directory must include it)");
    t.definition = read_file(file, "load: tokenizer", uint64_t(1) << 28);
  }
  TZ_CHECK(hash.empty() || tokenizer_hash(t.definition) == hash, "load: ", file, " is not the tokenizer ", path,
           " was trained with (its hash is ", tokenizer_hash(t.definition), ", the checkpoint expects ", hash,
           "): the file was replaced or edited");
  return t;
}

std::map<std::string, std::string> checkpoint_tokenizer_metadata(const TokenizerData& tokenizer) {
  std::map<std::string, std::string> meta = {{"tokenizer", tokenizer.kind}};
  if (!tokenizer.definition.empty()) {
    meta["tokenizer_file"] = kTokenizerFile;
    meta["tokenizer_hash"] = tokenizer_hash(tokenizer.definition);
  }
  return meta;
}

ModelFile read_model_file(const std::string& path) {
  std::error_code ec;
  TZ_CHECK(fs::exists(path, ec), "load: no file '", path, "'");
  TZ_CHECK(!fs::is_directory(path, ec), "load: '", path,
           "' is a directory; a model is a file: a run's checkpoint.safetensors, or the weights that "
           "`tensorzoo export --run DIR --out model.safetensors` writes");
  TensorFile f;
  try {
    f = load_safetensors(path, /*keep_raw=*/true);
  } catch (const Error& e) {
    throw Error(cat_str("load: '", path, "' is not a model file: ", e.what()));
  }
  ModelFile m;
  m.path = path;
  m.format = meta(f, "format");
  m.quantization = meta(f, "quantization");
  if (!m.quantization.empty()) {
    TZ_CHECK(m.format == kWeightsFormat, "load: '", path, "': quantization is only read in '", kWeightsFormat,
             "' files");
    QuantScheme scheme;
    try {
      scheme = parse_quant_scheme(m.quantization);
    } catch (const Error& e) {
      throw Error(cat_str("load: '", path, "': ", e.what()));
    }
    m.quantized = read_quantized(scheme, f.raw, f.tensors, path);
  }
  for (auto& [name, r] : f.raw) {  // not quantized: BF16 is widened to f32, I8 has no meaning
    TZ_CHECK(r.dtype == "BF16", "load: '", path, "': tensor '", name, "' is ", r.dtype,
             ", which only a quantized model file holds (its metadata has no 'quantization')");
    Tensor t = empty(r.shape);
    const auto* bits = reinterpret_cast<const uint16_t*>(r.bytes.data());
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = bf16_to_f32(bits[i]);
    f.tensors.emplace(name, t);
  }
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
  m.tokenizer = read_tokenizer_data(f.metadata, path);
  m.metadata = std::move(f.metadata);
  return m;
}

std::unique_ptr<LM> load_lm(const nn::Config& config, const std::map<std::string, Tensor>& weights,
                            const std::string& source, std::map<std::string, QuantizedMatrix>&& quantized) {
  Generator gen(0);  // the initial values are all replaced
  std::unique_ptr<LM> model;
  try {
    const nn::SkipWeightInit replaced_by_the_file;  // quantized weights are never resident in f32
    model = zoo::make_lm(config, gen);
  } catch (const Error& e) {
    throw Error(cat_str(source, ": ", e.what()));
  }
  if (!quantized.empty()) {
    apply_quantized(*model, quantized, source);
    empty_cache();  // the released f32 weights go back to the OS: resident size ~ file size
  }
  try {
    model->load_state_dict(weights);
  } catch (const Error& e) {
    throw Error(cat_str(source, ": ", e.what()));
  }
  model->eval();
  return model;
}

std::unique_ptr<LM> load_lm(ModelFile&& file) {
  return load_lm(file.config, file.weights, cat_str("load: '", file.path, "'"), std::move(file.quantized));
}

std::unique_ptr<LM> load_lm(const ModelFile& file) {
  std::map<std::string, QuantizedMatrix> quantized = file.quantized;
  return load_lm(file.config, file.weights, cat_str("load: '", file.path, "'"), std::move(quantized));
}

std::unique_ptr<LM> load_lm(const std::string& path) { return load_lm(read_model_file(path)); }

void save_weights(const std::string& path, const Model& model, WeightsDType dtype,
                  const std::map<std::string, std::string>& extra, const TokenizerData& tokenizer) {
  std::map<std::string, std::string> meta = extra;
  meta["format"] = kWeightsFormat;
  meta["format_version"] = std::to_string(kWeightsVersion);
  meta["config"] = model.config_json();
  meta["tokenizer"] = tokenizer.kind;
  if (!tokenizer.definition.empty()) meta["tokenizer_json"] = tokenizer.definition;
  meta["dtype"] = weights_dtype_name(dtype);
  save_safetensors(path, model.state_dict(), meta, dtype == WeightsDType::bf16 ? StoreF32::bf16 : StoreF32::f32);
}

}  // namespace tz::models
