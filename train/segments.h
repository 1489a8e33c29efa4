// Training and evaluating across segments (Transformer-XL, arXiv:1901.02860, sec. 3.2): a
// sequence longer than the model's context is read as consecutive segments of L positions;
// a model with segment memory (models/segment_memory.h) carries its memory from one segment
// to the next, any other model reads each segment on its own. Shapes: B batch, T positions
// of the whole sequence (a multiple of L), V vocabulary.
#pragma once

#include <cstdint>

#include "data/batch.h"
#include "models/model.h"

namespace tz::train {

// The logits [B, T, V] of inputs [B, T] read as segments of L. `memory` (a state from
// make_memory; null = a fresh one per call when the model has memory) carries across calls.
Tensor segmented_logits(models::Model& model, const Tensor& inputs, int64_t L, models::Model::State* memory = nullptr);

// The mean loss of the segments of `batch` (each segment's loss with its memory's own
// losses, averaged over the segments).
Tensor segmented_loss(models::Model& model, const data::Batch& batch, int64_t L,
                      models::Model::State* memory = nullptr);

// Cuts the graph a memory keeps (mem_bptt > 0) and hides the memory of `rows` (documents
// that start over).
void cut_memory(models::Model::State& memory, const std::vector<int64_t>& rows = {});

}  // namespace tz::train
