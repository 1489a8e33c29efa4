// Segment memory: Transformer-XL's segment-level recurrence (Dai et al. 2019, "Transformer-XL:
// Attentive Language Models Beyond a Fixed-Length Context", arXiv:1901.02860) and the models
// built on it: per-layer memory lengths (Rae & Razavi 2020, "Do Transformers Need Deep
// Long-Range Memory?", arXiv:2007.03356), ERNIE-Doc's enhanced recurrence (Ding et al. 2021,
// arXiv:2012.15688) and the Compressive Transformer (Rae et al. 2020, arXiv:1911.05507).
// Shapes: B batch, T positions of a segment, C width, N block applications (layers), M_n
// memory and Mc_n compressed memory of layer n, k = shift_mem_down.
//
//   u^n_τ           the input of layer n's mixer over segment τ                   [B, T, C]
//   layer n at τ:   keys, values from [cmem^n_τ ; mem^n_τ ; u^n_τ], queries from u^n_τ
//   mem^n_{τ+1}   = last M_n rows of [mem^n_τ ; SG(u^{n+k}_τ)]     (u^N = the final stream)
//   cmem^n_{τ+1}  = last Mc_n rows of [cmem^n_τ ; SG(f_c(old))]     old = the rows mem^n lost
//   L_attn        = ||attn_n(u^n_τ, old) - attn_n(u^n_τ, f_c(old))||²   (trains f_c only)
//
// The memory holds what each mixer saw (its normed input under pre-norm, the stream under
// post-norm, the paper's h^{n-1}), so memory and segment live in one space: that is what
// makes segment-by-segment equal to one forward with the staircase mask (ctx.segment). The
// memory sits at the positions before the segment, so positions must be relative: absolute
// schemes are refused. SG: the memory is detached unless mem_bptt > 0, which keeps the graph
// for the trainer to backpropagate through mem_bptt earlier segments (one backward per
// mem_bptt + 1 segments, then SegmentMemory::detach).
//
// Decoding keeps the same segments: the state caches the current segment's keys after the
// memory's; when a segment is full (context positions) its mixer inputs move into the memory
// and the caches restart from the memory's keys, so decoding costs O(M + context) per token
// however long the history, and gives the same logits as segment-by-segment forward.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "models/compression.h"
#include "nn/config.h"
#include "nn/mixer.h"
#include "nn/module.h"

namespace tz::models {

class Block;

inline const nn::Key<std::vector<int64_t>> kMemLen{
    "mem_len", {0}, "segment memory (Transformer-XL max_mem_len): M, one for all layers or one per layer"};
inline const nn::Key<std::vector<int64_t>> kCmemLen{
    "cmem_len", {0}, "compressed memory (Compressive Transformer): Mc, one for all layers or one per layer"};
inline const nn::Key<int64_t> kShiftMemDown{
    "shift_mem_down", 0,
    "layer n's memory comes from layer n + k of the last segment (ERNIE-Doc's enhanced recurrence)"};
inline const nn::Key<int64_t> kMemBptt{"mem_bptt", 0,
                                       "earlier segments the gradient reaches through the memory (0 = stop-gradient)"};

struct MemoryPlan {
  std::vector<int64_t> mem, cmem;  // per layer
  int64_t shift = 0, bptt = 0;
  CompressionOptions compression;
  double attn_loss = 0, ae_loss = 0;  // weights of the compression losses
  bool on() const;                    // some layer has memory
  bool compressive() const;           // some layer has compressed memory
  int64_t longest() const;            // the largest M_n + Mc_n
};

// Reads the memory keys for `layers` layers of width `dim`, checked (lists of one or one per
// layer, non-negative, k < layers); compression keys only with cmem_len.
MemoryPlan read_memory_plan(const nn::Config& config, int64_t layers, int64_t dim);
std::vector<nn::ConfigKey> memory_keys();

// The memory of B sequences, one FIFO per layer (a MixerState: saved with decoding states and
// in checkpoints). Undefined tensors are empty memories.
struct SegmentMemory : nn::MixerState {
  std::vector<Tensor> mem, mem_valid;    // [B, <= M_n, C], [B, <= M_n] i64 (0 = hidden)
  std::vector<Tensor> cmem, cmem_valid;  // [B, <= Mc_n, C], [B, <= Mc_n]
  std::vector<Tensor> pending;           // decoding: u^0..u^N of the current segment, [B, L, C]
                                         //   each, of which the first `filled` rows are written
  int64_t filled = 0;                    // decoding: positions of the current segment
  explicit SegmentMemory(size_t layers = 0);
  void visit(nn::StateVisitor& v) override;
  // Hides the memory of batch rows whose document starts over (their next segment sees none).
  void reset_rows(const std::vector<int64_t>& rows);
  // Cuts the graph the memory keeps under mem_bptt > 0.
  void detach();
};

// The learned part of the recurrence (the compressors) and its bookkeeping; owned by the LM
// as module `memory`.
class SegmentRecurrence : public nn::Module {
 public:
  SegmentRecurrence(const MemoryPlan& plan, int64_t dim, Generator& gen);
  // What layer n attends to besides the segment: [cmem; mem] and its flags (undefined when
  // empty; the flags undefined when every row is real).
  void memory_of(const SegmentMemory& m, size_t n, Tensor& memory, Tensor& valid) const;
  // Moves a segment's mixer inputs `seen` (u^0..u^N) into the memory. `blocks` and `ctx`
  // (the segment's start and position scheme) serve the compression losses and most_used.
  void push(SegmentMemory& m, const std::vector<Tensor>& seen, const std::vector<std::shared_ptr<Block>>& blocks,
            const nn::MixerContext& ctx, nn::AuxLosses* aux) const;
  std::string describe() const override;
  MemoryPlan plan;
  std::vector<std::shared_ptr<Compressor>> compressors;  // per layer with cmem, else null
};

}  // namespace tz::models
