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

// ERNIE-Doc's retrospective feed (Ding et al. 2021, arXiv:2012.15688, sec. 3.2): with
// feeds = 2 a model with memory reads the sequence twice, the first time without a loss and
// without gradients (skimming), so that in the second every segment's memory holds the whole
// sequence, what comes after the segment included. feeds = 1 reads it once.

// The logits [B, T, V] of inputs [B, T] read as segments of L (the last feed's). `memory`
// (a state from make_memory; null = a fresh one per call when the model has memory) carries
// across calls.
Tensor segmented_logits(models::Model& model, const Tensor& inputs, int64_t L, models::Model::State* memory = nullptr,
                        int64_t feeds = 1);

// The mean loss of the segments of `batch` (each segment's loss with its memory's own
// losses, averaged over the segments), over the last feed.
Tensor segmented_loss(models::Model& model, const data::Batch& batch, int64_t L, models::Model::State* memory = nullptr,
                      int64_t feeds = 1);

// Cuts the graph a memory keeps (mem_bptt > 0) and hides the memory of `rows` (documents
// that start over).
void cut_memory(models::Model::State& memory, const std::vector<int64_t>& rows = {});

}  // namespace tz::train
