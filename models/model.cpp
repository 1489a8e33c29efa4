#include "models/model.h"

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"

namespace tz::models {

namespace {
Tensor token_loss(Model& m, const Model::Batch& batch, Model::State* state) {
  nn::AuxLosses aux;
  Tensor out = m.forward(batch.inputs, state, &aux);
  Tensor l = cross_entropy(out.reshape({-1, out.size(-1)}), batch.targets.reshape({-1}));
  Tensor extra = aux.total();
  return extra.defined() ? l + extra : l;
}
}  // namespace

Tensor Model::loss(const Batch& batch) { return token_loss(*this, batch, nullptr); }

Tensor Model::loss(const Batch& batch, State& memory) {
  TZ_CHECK(memory.memory && memory.layers.empty(), describe(), ": loss over segments needs a state from make_memory()");
  return token_loss(*this, batch, &memory);
}

Model::State Model::make_memory(int64_t) const {
  throw Error(cat_str(describe(), ": has no segment memory (mem_len / cmem_len)"));
}

std::map<std::string, Tensor> save_model_state(const Model::State& state) {
  std::map<std::string, Tensor> out{{"length", full({1}, double(state.length), DType::i64)}};
  for (size_t i = 0; i < state.layers.size(); ++i)
    for (auto& [name, t] : nn::save_state(*state.layers[i])) out.emplace(cat_str("layers.", i, ".", name), t);
  if (state.memory)
    for (auto& [name, t] : nn::save_state(*state.memory)) out.emplace("memory." + name, t);
  return out;
}

void restore_model_state(Model::State& state, const std::map<std::string, Tensor>& saved) {
  auto length = saved.find("length");
  TZ_CHECK(length != saved.end(), "restore: the saved state has no 'length'");
  state.length = int64_t(length->second.item());
  auto part = [&](const std::string& prefix, nn::MixerState& s) {
    std::map<std::string, Tensor> mine;
    for (auto& [name, t] : saved)
      if (name.compare(0, prefix.size(), prefix) == 0) mine.emplace(name.substr(prefix.size()), t);
    nn::restore_state(s, mine);
  };
  for (size_t i = 0; i < state.layers.size(); ++i) part(cat_str("layers.", i, "."), *state.layers[i]);
  if (state.memory) part("memory.", *state.memory);
  size_t known = 1;
  for (auto& [name, t] : saved)
    known += name.compare(0, 7, "layers.") == 0 || (state.memory && name.compare(0, 7, "memory.") == 0);
  TZ_CHECK(known == saved.size(), "restore: the saved state holds names outside 'length', 'layers.'",
           state.memory ? " and 'memory.'" : " (a memory the model does not have?)");
}

Model::State Model::make_state(int64_t, int64_t) const {
  throw Error(cat_str(describe(), ": no step-by-step form: ", why_no_step()));
}

Model::Batch Model::sample(int64_t, Generator&) const {
  throw Error(cat_str(describe(), ": a language model has no task of its own (use the tasks of data/tasks.h)"));
}

}  // namespace tz::models
