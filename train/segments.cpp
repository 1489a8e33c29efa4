#include "train/segments.h"

#include "autograd/ops.h"
#include "core/text.h"
#include "models/rmt.h"
#include "models/segment_memory.h"

namespace tz::train {

namespace {
// Checks the split, then readies the memory the segments go through: the caller's, or
// `fresh` for a model with memory (null for one without); the retrospective feed skims the
// whole sequence into it first, with no loss and no gradient.
models::Model::State* prepare(models::Model& m, const Tensor& inputs, int64_t L, models::Model::State* memory,
                              int64_t feeds, models::Model::State& fresh) {
  const int64_t T = inputs.size(1);
  TZ_CHECK(L > 0 && T % L == 0, "segments: the sequence of ", T, " positions does not split into segments of ", L);
  TZ_CHECK(L <= m.context(), "segments: a segment of ", L, " positions exceeds the model's context ", m.context());
  TZ_CHECK(feeds == 1 || (feeds == 2 && m.has_memory()),
           "segments: feeds must be 1, or 2 (the retrospective feed) for a model with segment memory, got ", feeds);
  if (!memory && m.has_memory()) fresh = m.make_memory(inputs.size(0)), memory = &fresh;
  if (feeds == 2) {
    NoGradGuard no_grad;
    for (int64_t t = 0; t < T; t += L) m.forward(inputs.narrow(1, t, L), memory);
  }
  return memory;
}
}  // namespace

Tensor segmented_logits(models::Model& m, const Tensor& inputs, int64_t L, models::Model::State* memory,
                        int64_t feeds) {
  models::Model::State fresh;
  memory = prepare(m, inputs, L, memory, feeds, fresh);
  std::vector<Tensor> out;
  for (int64_t t = 0; t < inputs.size(1); t += L) out.push_back(m.forward(inputs.narrow(1, t, L), memory));
  return out.size() == 1 ? out[0] : cat(out, 1);
}

Tensor segmented_loss(models::Model& m, const data::Batch& b, int64_t L, models::Model::State* memory, int64_t feeds) {
  models::Model::State fresh;
  memory = prepare(m, b.inputs, L, memory, feeds, fresh);
  const int64_t T = b.inputs.size(1);
  Tensor total;
  for (int64_t t = 0; t < T; t += L) {
    const data::Batch seg{b.inputs.narrow(1, t, L), b.targets.narrow(1, t, L)};
    Tensor l = memory ? m.loss({{seg.inputs}, seg.targets}, *memory) : m.loss(seg.inputs, seg.targets);
    total = total.defined() ? total + l : l;
  }
  return T == L ? total : total / double(T / L);
}

void cut_memory(models::Model::State& memory, const std::vector<int64_t>& rows) {
  if (auto* r = dynamic_cast<models::RmtState*>(memory.memory.get())) {  // RMT's memory tokens
    r->detach();
    if (!rows.empty()) r->reset_rows(rows);
    return;
  }
  auto* m = dynamic_cast<models::SegmentMemory*>(memory.memory.get());
  TZ_CHECK(m, "cut_memory: the state holds no segment memory");
  m->detach();
  if (!rows.empty()) m->reset_rows(rows);
}

}  // namespace tz::train
