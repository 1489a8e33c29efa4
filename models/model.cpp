#include "models/model.h"

#include "autograd/ops.h"
#include "core/text.h"

namespace tz::models {

Tensor Model::loss(const Batch& batch) {
  nn::AuxLosses aux;
  Tensor out = forward(batch.inputs, nullptr, &aux);
  Tensor l = cross_entropy(out.reshape({-1, out.size(-1)}), batch.targets.reshape({-1}));
  Tensor extra = aux.total();
  return extra.defined() ? l + extra : l;
}

Model::State Model::make_state(int64_t, int64_t) const {
  throw Error(cat_str(describe(), ": no step-by-step form: ", why_no_step()));
}

Model::Batch Model::sample(int64_t, Generator&) const {
  throw Error(cat_str(describe(), ": a language model has no task of its own (use the tasks of data/tasks.h)"));
}

}  // namespace tz::models
