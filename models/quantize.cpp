// Quantized model files; see quantize.h.
#include "models/quantize.h"

#include "core/kernels/quant.h"
#include "models/weights.h"

namespace tz::models {

namespace {

void collect(nn::Module& m, const std::string& prefix, std::vector<std::pair<std::string, nn::Linear*>>& out) {
  if (auto* lin = dynamic_cast<nn::Linear*>(&m)) out.emplace_back(prefix, lin);
  for (const auto& [name, child] : m.named_children())
    collect(*child, prefix.empty() ? name : cat_str(prefix, ".", name), out);
}

}  // namespace

std::vector<std::pair<std::string, nn::Linear*>> linear_layers(nn::Module& root, const std::string& prefix) {
  std::vector<std::pair<std::string, nn::Linear*>> out;
  collect(root, prefix, out);
  return out;
}

QuantizeSummary save_quantized(const std::string& path, const Model& model, QuantScheme scheme,
                               const std::map<std::string, std::string>& extra) {
  std::map<std::string, Tensor> tensors = model.state_dict();
  std::map<std::string, RawTensor> raw;
  QuantizeSummary sum;
  // The walk only reads: the model's Linear weights are quantized into new buffers.
  for (const auto& [name, lin] : linear_layers(const_cast<Model&>(model))) {
    const std::string key = cat_str(name, ".weight");
    if (!tensors.count(key)) continue;  // shared or already quantized
    const Tensor& w = tensors.at(key);
    if (!QuantizedMatrix::can_quantize(w, scheme)) {
      ++sum.kept_f32;
      continue;
    }
    QuantizedMatrix q = QuantizedMatrix::quantize(w, scheme);
    const bool q8 = scheme == QuantScheme::q8_0;
    raw[key] = RawTensor{q8 ? "I8" : "BF16", w.shape(), q.data()};
    if (q8) tensors[key + kScalesSuffix] = q.scales();
    tensors.erase(key);
    ++sum.quantized;
    sum.quantized_bytes += q.bytes();
  }
  for (const auto& [name, t] : tensors)
    if (name.size() < 7 || name.compare(name.size() - 7, 7, kScalesSuffix) != 0)
      sum.f32_bytes += size_t(t.numel()) * dtype_size(t.dtype());
  std::map<std::string, std::string> meta = extra;
  meta["format"] = kWeightsFormat;
  meta["format_version"] = std::to_string(kWeightsVersion);
  meta["config"] = model.config_json();
  meta["tokenizer"] = kByteTokenizer;
  meta["quantization"] = quant_scheme_name(scheme);
  if (scheme == QuantScheme::q8_0) meta["quant_block"] = std::to_string(kernels::kQ8Block);
  save_safetensors(path, tensors, meta, StoreF32::f32, raw);
  return sum;
}

std::map<std::string, QuantizedMatrix> read_quantized(QuantScheme scheme, std::map<std::string, RawTensor>& raw,
                                                      std::map<std::string, Tensor>& tensors, const std::string& path) {
  const std::string expect = scheme == QuantScheme::q8_0 ? "I8" : "BF16";
  std::map<std::string, QuantizedMatrix> out;
  for (auto& [name, r] : raw) {
    const std::string where = cat_str("load: '", path, "': tensor '", name, "'");
    TZ_CHECK(r.dtype == expect, where, " is ", r.dtype, " but the file's quantization ", quant_scheme_name(scheme),
             " stores weights as ", expect);
    TZ_CHECK(r.shape.size() == 2, where, ": a quantized weight must be 2-D [N, K], got ", r.shape);
    Tensor scales;
    if (scheme == QuantScheme::q8_0) {
      auto it = tensors.find(name + kScalesSuffix);
      TZ_CHECK(it != tensors.end(), where, " has no scales '", name, kScalesSuffix, "'");
      scales = it->second;
      tensors.erase(it);
    }
    out.emplace(name, QuantizedMatrix::from_parts(scheme, r.shape[0], r.shape[1], std::move(r.bytes), scales, where));
  }
  raw.clear();
  for (const auto& [name, t] : tensors) {
    const bool stray = name.size() > 7 && name.compare(name.size() - 7, 7, kScalesSuffix) == 0;
    TZ_CHECK(!stray, "load: '", path, "': scales '", name, "' belong to no quantized weight");
  }
  return out;
}

void apply_quantized(nn::Module& model, std::map<std::string, QuantizedMatrix>& quantized, const std::string& source) {
  std::map<std::string, nn::Linear*> by_name;
  for (const auto& [name, lin] : linear_layers(model)) by_name[cat_str(name, ".weight")] = lin;
  for (auto& [name, q] : quantized) {
    auto it = by_name.find(name);
    TZ_CHECK(it != by_name.end(), source, ": quantized tensor '", name,
             "' is not the weight of a Linear layer of the model");
    try {
      it->second->set_quantized(std::move(q));
    } catch (const Error& e) {
      throw Error(cat_str(source, ": '", name, "': ", e.what()));
    }
  }
  quantized.clear();
}

}  // namespace tz::models
