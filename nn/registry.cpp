#include "nn/registry.h"

#include <algorithm>

#include "autograd/ops.h"
#include "core/text.h"
#include "nn/catalogue.h"

namespace tz::nn {

Tensor AuxLosses::total() const {
  Tensor t;
  for (auto& [name, v] : terms) t = t.defined() ? t + v : v;
  return t;
}

std::unique_ptr<MixerState> Mixer::make_state(int64_t, int64_t, DType) const {
  throw Error(cat_str(describe(), ": no step (recurrent/cached) form: ", why_no_step()));
}

namespace {
// The project-relative path of a source file: from its layer folder on.
std::string project_path(const std::string& file) {
  size_t best = std::string::npos;
  for (const char* layer : {"/core/", "/autograd/", "/nn/", "/models/", "/optim/", "/data/", "/train/", "/tests/"}) {
    size_t at = file.rfind(layer);
    if (at != std::string::npos && (best == std::string::npos || at > best)) best = at;
  }
  return best == std::string::npos ? file : file.substr(best + 1);
}
}  // namespace

void Registry::add(VariantInfo info, std::source_location where) {
  if (info.source.empty()) info.source = project_path(where.file_name());
  if (const CatalogueRow* row = catalogue_row(info.id)) {
    TZ_CHECK(!info.extra, "registry: '", info.id, "' is a catalogue row, not an extra (", info.source, ")");
    TZ_CHECK(info.family.empty() || info.family == row->family, "registry: '", info.id, "' gives family '", info.family,
             "', the catalogue says '", row->family, "' (", info.source, ")");
    TZ_CHECK(info.kind.empty() || info.kind == row->kind, "registry: '", info.id, "' gives kind '", info.kind,
             "', the catalogue says '", row->kind, "' (", info.source, ")");
    info.family = row->family;
    info.kind = row->kind;
    if (info.paper.empty()) info.paper = row->paper;
  } else {
    TZ_CHECK(info.extra, "registry: '", info.id,
             "' is not a catalogue id (docs/catalogue.tsv); mark a genuine "
             "extra with .extra = true (",
             info.source, ")");
  }
  TZ_CHECK(!info.id.empty() && !info.family.empty() && !info.kind.empty() && !info.summary.empty(), "registry: entry '",
           info.id, "' needs an id, family, kind and summary");
  for (const ConfigKey& k : info.keys) {
    if (k.type.empty()) continue;
    auto [it, fresh] = key_types_.emplace(k.key, std::make_pair(k.type, info.id));
    TZ_CHECK(fresh || it->second.first == k.type, "registry: config key '", k.key, "' is declared as ", k.type, " by '",
             info.id, "' and as ", it->second.first, " by '", it->second.second, "'");
  }
  TZ_CHECK(!entries_.count(info.id), "registry: id '", info.id, "' registered twice (", info.source, " and ",
           entries_.count(info.id) ? entries_.at(info.id).source : "", ")");
  int factories = bool(info.mixer) + bool(info.position) + bool(info.ffn) + bool(info.norm) + bool(info.model);
  TZ_CHECK(factories <= 1, "registry: entry '", info.id, "' has more than one factory");
  const bool learn_override = info.learn_steps > 0 || info.learn_lr > 0 || !info.learn_task.empty();
  TZ_CHECK(!learn_override || !info.learn_reason.empty(), "registry: '", info.id,
           "' changes the learns check's steps, lr or task: give the reason in learn_reason (", info.source, ")");
  std::string id = info.id;
  entries_.emplace(id, std::move(info));
}

const VariantInfo* Registry::find(const std::string& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

const VariantInfo& Registry::get(const std::string& id) const {
  if (const VariantInfo* v = find(id)) return *v;
  std::string guess = nearest(id, ids());
  throw Error(cat_str("unknown variant id '", id, "'", guess.empty() ? "" : "; did you mean '" + guess + "'?",
                      " (`tensorzoo list --ids` shows all ", entries_.size(), ")"));
}

std::vector<const VariantInfo*> Registry::all() const {
  std::vector<const VariantInfo*> out;
  for (auto& [id, v] : entries_) out.push_back(&v);
  return out;
}

std::vector<std::string> Registry::ids(const std::string& kind) const {
  std::vector<std::string> out;
  for (auto& [id, v] : entries_)
    if (kind.empty() || v.kind == kind) out.push_back(id);
  return out;
}

const VariantInfo& Registry::get_kind(const std::string& id, const char* kind, const char* key) const {
  std::vector<std::string> valid;
  for (auto& [i, v] : entries_) {
    bool has = (std::string(kind) == "mixer" && v.mixer) || (std::string(kind) == "pos" && v.position) ||
               (std::string(kind) == "ffn" && v.ffn) || (std::string(kind) == "norm" && v.norm);
    if (has) valid.push_back(i);
  }
  if (std::find(valid.begin(), valid.end(), id) == valid.end()) {
    std::string guess = nearest(id, valid);
    throw Error(cat_str("config key '", key, "': unknown ", kind, " '", id, "'",
                        guess.empty() ? "" : "; did you mean '" + guess + "'?", " Valid: ", join(valid)));
  }
  return entries_.at(id);
}

std::shared_ptr<Mixer> Registry::make_mixer(const std::string& id, const ModelDims& d, const Config& c,
                                            Generator& g) const {
  return get_kind(id, "mixer", "mixer").mixer(d, c, g);
}
std::shared_ptr<PositionScheme> Registry::make_position(const std::string& id, const ModelDims& d, const Config& c,
                                                        Generator& g) const {
  return get_kind(id, "pos", "pos").position(d, c, g);
}
std::shared_ptr<UnaryModule> Registry::make_ffn(const std::string& id, const ModelDims& d, const Config& c,
                                                Generator& g) const {
  return get_kind(id, "ffn", "ffn").ffn(d, c, g);
}
std::shared_ptr<UnaryModule> Registry::make_norm(const std::string& id, const ModelDims& d, const Config& c,
                                                 Generator& g) const {
  return get_kind(id, "norm", "norm").norm(d, c, g);
}

}  // namespace tz::nn
