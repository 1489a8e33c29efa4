// Model files: loading a language model from a checkpoint file, and the weights-only file that
// `tensorzoo export` writes for applications.
//
// Two kinds of safetensors file hold a model, told apart by their "format" metadata:
//   tensorzoo-train-checkpoint  a training run's checkpoint.safetensors: the weights as
//                               model.<name>, and what resuming needs (optimizer moments
//                               optim.*, segment memory state.*, stream places data.cursors),
//                               about three times the weights' size with AdamW
//   tensorzoo-weights           the weights alone under their state-dict names, f32 or BF16
//                               (widened to f32 when read), for Python's safetensors too;
//                               or, with "quantization" metadata, the Linear weights in
//                               int8 or bf16, kept so in memory (models/quantize.h)
// Both hold the model config ("config") and name the tokenizer it reads ("tokenizer": "bytes",
// the default when absent, or "bpe"). A learned tokenizer's definition (its merges, JSON) is in
// the weights file itself ("tokenizer_json"), and beside a checkpoint in its run directory
// ("tokenizer_file": tokenizer.json, with "tokenizer_hash" so that a replaced file is caught).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/quant.h"
#include "core/safetensors.h"
#include "models/lm.h"
#include "nn/config.h"

namespace tz::models {

constexpr const char* kTrainCheckpointFormat = "tensorzoo-train-checkpoint";
constexpr int kTrainCheckpointVersion = 1;
constexpr const char* kWeightsFormat = "tensorzoo-weights";
constexpr int kWeightsVersion = 1;
constexpr const char* kByteTokenizer = "bytes";
constexpr const char* kTokenizerFile = "tokenizer.json";

// The tokenizer a model file names: its kind and, for a learned one, its definition (the
// text data::make_tokenizer reads; empty for bytes).
struct TokenizerData {
  std::string kind = kByteTokenizer;
  std::string definition;
};
// FNV-1a 64 of a definition, as hex ("tokenizer_hash").
std::string tokenizer_hash(const std::string& definition);
// The tokenizer of a model file at `path` from its metadata; a checkpoint's file is read from
// the file's directory, or taken from `file_text` when given (a copy read elsewhere). Errors
// name the path and, for the tokenizer file, that file and what was expected.
TokenizerData read_tokenizer_data(const std::map<std::string, std::string>& metadata, const std::string& path,
                                  const std::string* file_text = nullptr);
// The metadata a checkpoint writes for its tokenizer (kind; file name and hash of a learned one).
std::map<std::string, std::string> checkpoint_tokenizer_metadata(const TokenizerData& tokenizer);

// How export stores the weights: f32, or BF16 (half the size; rounded to 8 mantissa bits).
enum class WeightsDType { f32, bf16 };
// "f32" or "bf16"; anything else is an error naming both.
WeightsDType parse_weights_dtype(std::string_view name);
const char* weights_dtype_name(WeightsDType dtype);

// A model file read and checked, not yet built into a model.
struct ModelFile {
  std::string path;
  std::string format;                           // kTrainCheckpointFormat or kWeightsFormat
  nn::Config config;                            // the model config
  TokenizerData tokenizer;                      // the tokenizer the model reads
  std::map<std::string, Tensor> weights;        // state-dict name -> tensor (f32 when BF16 on disk)
  std::map<std::string, std::string> metadata;  // all of the file's metadata
  // A quantized file (models/quantize.h): its scheme ("" otherwise) and the Linear weights
  // kept in it, by state-dict name (not in `weights`).
  std::string quantization;
  std::map<std::string, QuantizedMatrix> quantized;
};

// Reads either kind of file. Errors name the path and what is wrong: a missing file or a
// directory, a file that is not safetensors, one that is not a tensorzoo model (no format),
// an unknown format, version or tokenizer, a config that does not parse.
ModelFile read_model_file(const std::string& path);

// Builds the LM of a file's config and loads its weights strictly (missing, unexpected and
// wrongly shaped tensors are named), in eval mode, ready for generation. A quantized file's
// weights move into the model (the ModelFile&& overload; the const one copies them).
std::unique_ptr<LM> load_lm(ModelFile&& file);
std::unique_ptr<LM> load_lm(const ModelFile& file);
std::unique_ptr<LM> load_lm(const std::string& path);
// The same from a config and its state dict; `source` names where they came from in errors.
std::unique_ptr<LM> load_lm(const nn::Config& config, const std::map<std::string, Tensor>& weights,
                            const std::string& source, std::map<std::string, QuantizedMatrix>&& quantized = {});

// Writes a weights-only file: the state dict of `model` (f32 or BF16), its config, the
// tokenizer (kind and definition) and `extra` metadata (e.g. where it came from). Atomic, as
// every safetensors write.
void save_weights(const std::string& path, const Model& model, WeightsDType dtype,
                  const std::map<std::string, std::string>& extra = {}, const TokenizerData& tokenizer = {});

}  // namespace tz::models
