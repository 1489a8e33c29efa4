// The variant registry: every catalogue id, registered once in the file that implements it.
//
// An entry holds the facts a reader needs (family, kind, paper, summary, the config keys it
// reads with defaults and docs, its source file) and how to build it: a factory for its
// component (mixer, position scheme, FFN, norm) or a whole-model factory, plus a small
// config overlay that plugs it into the tiny test model of the conformance suite.
//
// Registration is explicit: each implementing file defines `void register_<id>(Registry&)`
// and lists the id in its family's variants.def, so no static initialiser can be dropped by
// the linker and the full list is readable in one place. An entry names only what the code
// knows: family, kind and paper come from the id's catalogue row (nn/catalogue.h) and the
// source file from where add() is called:
//
//   r.add({.id = "mqa", .summary = "...", .keys = {kKvHeads}, .test_config = R"({"attn_kv_heads": 1})"});
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <source_location>
#include <string>
#include <vector>

#include "core/random.h"
#include "nn/config.h"
#include "nn/mixer.h"

namespace tz::nn {

// The sizes every component is built with.
struct ModelDims {
  int64_t dim = 0;      // C
  int64_t heads = 0;    // H
  int64_t context = 0;  // longest sequence
  int64_t depth = 0;    // number of blocks
  int64_t layer = 0;    // index of the block being built
  bool bias = true;     // biases in linear layers
  double dropout = 0.0;
  bool causal = true;       // mixers: false for encoders (bidirectional)
  int64_t context_dim = 0;  // > 0: a cross-attention mixer reading MixerContext::context of this width
};

using MixerFactory = std::function<std::shared_ptr<Mixer>(const ModelDims&, const Config&, Generator&)>;
using PositionFactory = std::function<std::shared_ptr<PositionScheme>(const ModelDims&, const Config&, Generator&)>;
using UnaryFactory = std::function<std::shared_ptr<UnaryModule>(const ModelDims&, const Config&, Generator&)>;
// A whole model (a models::Model: the wrappers), built from its own config.
using ModelFactory = std::function<std::shared_ptr<Module>(const Config&, Generator&)>;

struct VariantInfo {
  std::string id;
  std::string family;   // catalogue family (attention_core, position, ffn, ...): from the catalogue
  std::string kind;     // mixer, pos, ffn, norm, residual, model, attn_option, ...: from the catalogue
  std::string paper;    // arXiv id or venue: from the catalogue unless given
  std::string summary;  // one line
  std::string source;   // the implementing file: where add() was called
  std::vector<ConfigKey> keys;
  // Overlay on the tiny test model that selects this variant (e.g. {"mixer": "retnet"}).
  std::string test_config = "{}";
  // An example config for `tensorzoo info` and docs.
  std::string example;
  bool extra = false;  // not in the catalogue (a genuine extra)
  // Exactly one of these builds it, by kind: mixers, positions, FFNs, norms.
  MixerFactory mixer;
  PositionFactory position;
  UnaryFactory ffn;
  UnaryFactory norm;
  ModelFactory model;  // wrappers (ViT, continuous, encoder-decoder): test_config is its whole config
  // ---- how the conformance suite (train/conformance.h) checks it ----
  // The chunk or window size its test_config sets (0 = none): the causal and step checks
  // run at T >= 2 chunk + 3, so that their splits cross chunk boundaries.
  int64_t chunk = 0;
  // Draws the parameters whose initial value hides a sublayer (ReZero's α = 0) away from it,
  // so that the checks of what lies behind are not vacuous: the gradient check runs again
  // on the randomised model, the causal, step and io checks run on it.
  std::function<void(Module&, Generator&)> randomise;
  // The "learns" check: by default held-out accuracy >= 0.9 on copy after 400 steps at
  // peak lr 1e-2. A variant may change the steps, the lr or the task (a name in
  // data/tasks.h) only with a one-line learn_reason, which the suite prints.
  int64_t learn_steps = 0;  // 0 = the default
  double learn_lr = 0;      // 0 = the default
  std::string learn_task;   // "" = copy
  std::string learn_reason;
  // What its family claims, proven by one more task each in the "learns" check: selective
  // (input-dependent) mixers also learn selective copying (selective_copy_mamba), recall
  // mixers a small multi-query associative recall (mqar_zoology).
  bool selective = false;
  bool recall = false;
};

class Registry {
 public:
  // Completes the entry from the catalogue and the caller's file; throws on a duplicate id,
  // a family or kind that contradicts the catalogue, an id neither in the catalogue nor
  // marked extra, a config key declared with another type by another entry, or a malformed
  // entry.
  void add(VariantInfo info, std::source_location where = std::source_location::current());
  const VariantInfo& get(const std::string& id) const;  // throws listing ids, nearest first
  const VariantInfo* find(const std::string& id) const;
  std::vector<const VariantInfo*> all() const;  // sorted by id
  std::vector<std::string> ids(const std::string& kind = "") const;
  // Factories by kind; `what` names the config key for error messages.
  std::shared_ptr<Mixer> make_mixer(const std::string& id, const ModelDims&, const Config&, Generator&) const;
  std::shared_ptr<PositionScheme> make_position(const std::string& id, const ModelDims&, const Config&,
                                                Generator&) const;
  std::shared_ptr<UnaryModule> make_ffn(const std::string& id, const ModelDims&, const Config&, Generator&) const;
  std::shared_ptr<UnaryModule> make_norm(const std::string& id, const ModelDims&, const Config&, Generator&) const;

 private:
  const VariantInfo& get_kind(const std::string& id, const char* kind, const char* key) const;
  std::map<std::string, VariantInfo> entries_;
  std::map<std::string, std::pair<std::string, std::string>> key_types_;  // key -> (type, first id)
};

}  // namespace tz::nn
