// The Recurrent Memory Transformer (decoder form): "Recurrent Memory Transformer", Bulatov,
// Kuratov, Burtsev 2022, arXiv:2207.06881 (NeurIPS 2022), sec. 3. Shapes: B batch, T positions
// of a call, L segment length, m memory tokens, C width, V vocabulary.
//
// A sequence is read as segments x_τ of L tokens. Segment τ runs one causal transformer over
//   H^0_τ  = [mem_τ ; E(x_τ) + P(m .. m + L - 1) ; mem_τ]       [B, m + L + m, C]
//   H^N_τ  = blocks(H^0_τ)                                     (the final stream)
//   logits_τ  = head(norm_f(H^N_τ[:, m : m + L]))              [B, L, V]
//   mem_{τ+1} = H^N_τ[:, m + L :]                              [B, m, C]  (the write positions)
// mem_0 is a learned [m, C] parameter. The read copy of the memory sits at the start, so every
// token sees it; the write copy at the end, so it sees the whole segment and its outputs
// become the next segment's memory. Positions restart in every segment: the segment's tokens
// sit at m .. m + L - 1 (P is the backbone's scheme over 2m + L positions; schemes inside
// attention see the memory at 0 .. m - 1 and m + L .. 2m + L - 1).
//
// Truncated BPTT (rmt_bptt = k): the memory entering segment τ is detached when τ is a
// multiple of k + 1 (τ > 0), so a segment's loss reaches at most k earlier segments through
// the memory and exactly none beyond (blocks of k + 1 segments, as one backward per block);
// k = -1 keeps the whole history of a call or of a training memory. The segment counter lives
// in the state, so a memory from make_memory cuts at the same segments across calls. The
// trainer carries such a memory from step to step and cuts it at each step's start
// (train::cut_memory); a row whose document starts over reads mem_0 at its next segment.
//
// Decoding: the state holds mem_τ, the segment's block states (KV caches of [mem_τ ; x_τ so
// far]) and the tokens read of it. A segment starts by prefilling the read tokens; tokens
// then cost one cached step; when L tokens are in, the write tokens run on the same caches
// and their outputs become mem_{τ+1}. Because the write tokens come last and attention is
// causal, the logits of token t do not depend on them: decoding gives the same logits as the
// segment forward (equal up to float rounding, checked to 1e-9 in f64), and the memory after
// a full segment is the segment forward's mem_{τ+1}. A token costs O(m + L) whatever the
// position. Decoding writes only after L tokens; a memory from make_memory (training across
// calls: each call starts a segment) takes what every segment writes, a partial one too.
//
// Deviations from the paper:
// - The memory is the final stream at the write positions before norm_f, and memory tokens
//   get no position embedding (the paper's GPT-2 code takes the normed last hidden state and
//   adds positions to every input). Normed, the memory has unit scale against token
//   embeddings of 0.02 and carries the segment's content as a small perturbation: on the
//   proof's passkey with segments of 8 the loss stayed at chance (ln 8) for 800 steps that
//   way and was falling within 200 this way. Without positions the memory does not gather a
//   position vector per segment either.
// - mem_0 is a learned parameter per memory slot (the paper's memory token embeddings).
// - rmt_bptt cuts in blocks of k + 1 segments (as Transformer-XL's mem_bptt here), so early
//   segments of a block reach fewer than k earlier segments.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/model.h"
#include "nn/layers.h"
#include "nn/registry.h"

namespace tz::models {

inline const nn::Key<int64_t> kRmtSegment{"rmt_segment", 64, "RMT: segment length L (tokens per segment)"};
inline const nn::Key<int64_t> kRmtMemory{"rmt_memory", 4, "RMT: memory tokens m (read at the start, write at the end)"};
inline const nn::Key<int64_t> kRmtBptt{
    "rmt_bptt", -1, "RMT: earlier segments a segment's gradient reaches through the memory (truncated BPTT; -1 = all)"};

// The memory between segments and, in decoding, the open segment.
struct RmtState : nn::MixerState {
  Tensor mem;            // mem_τ [B, m, C]; undefined = mem_0 (nothing read yet)
  int64_t segments = 0;  // τ: segments completed
  int64_t filled = 0;    // decoding: tokens of segment τ read so far
  int64_t batch = 0;     // B it was made for
  Tensor restart;        // [B] i64, 1 = the row's document starts over: its next segment reads
                         //   mem_0 (reset_rows); undefined = none
  void visit(nn::StateVisitor& v) override {
    MixerState::visit(v);
    v.tensor("mem", mem);
    v.tensor("restart", restart);
    v.count("segments", segments);
    v.count("filled", filled);
    v.count("batch", batch);
  }
  // Cuts the graph the memory keeps (the trainer, between steps).
  void detach();
  // The rows whose documents start over read mem_0 at their next segment.
  void reset_rows(const std::vector<int64_t>& rows);
};

class RecurrentMemoryTransformer : public Model {
 public:
  RecurrentMemoryTransformer(const nn::Config& config, const nn::Registry& registry, Generator& gen);
  using Model::forward;
  using Model::loss;
  // {ids i64 [B, T]} → logits [B, T, V]: segments of L (the last may be partial). With a state
  // from make_state (decoding) the ids continue it, any number at a time; with one from
  // make_memory (training across calls) each call starts a segment and every segment, a
  // last partial one too, writes the memory the next call reads.
  Tensor forward(const std::vector<Tensor>& inputs, State* state = nullptr, nn::AuxLosses* aux = nullptr) override;
  int causal_input() const override { return 0; }
  std::string why_no_step() const override { return ""; }
  State make_state(int64_t batch, int64_t capacity) const override;
  bool has_memory() const override { return true; }
  State make_memory(int64_t batch) const override;
  // Copy within each segment of `context` tokens: the conformance suite's task.
  Batch sample(int64_t batch, Generator& gen) const override;
  int64_t vocab() const override { return vocab_; }
  int64_t context() const override { return context_; }
  std::string describe() const override;

  int64_t segment() const { return segment_; }
  int64_t memory_tokens() const { return m_; }
  int64_t bptt() const { return bptt_; }

  // One segment of n <= L tokens from memory `mem` [B, m, C] (undefined = mem_0): {logits
  // [B, n, V], the memory its write positions give [B, m, C] (undefined without `write`)}.
  std::pair<Tensor, Tensor> run_segment(const Tensor& ids, const Tensor& mem, bool write = true);

  std::shared_ptr<nn::Embedding> tok_emb;
  std::shared_ptr<nn::PositionScheme> pos;
  std::shared_ptr<nn::ModuleList> layers;  // of Block
  std::shared_ptr<nn::UnaryModule> norm_f;
  std::shared_ptr<nn::Linear> head;  // null when tied
  Tensor mem_init;                   // mem_0 [m, C]

 private:
  Tensor memory_input(const Tensor& mem, int64_t B) const;  // mem, or mem_0 for B rows
  Tensor memory_of(RmtState& s, int64_t B) const;           // what s's next segment reads
  // The final stream (before norm_f) of h at positions start.., through `states` when given.
  Tensor run_blocks(const Tensor& h, int64_t start, std::vector<std::unique_ptr<nn::MixerState>>* states) const;
  Tensor logits(const Tensor& y) const;
  Tensor decode(const Tensor& ids, State& state, RmtState& s);
  int64_t vocab_ = 0, dim_ = 0, context_ = 0, segment_ = 0, m_ = 0, bptt_ = -1;
};

std::vector<nn::ConfigKey> rmt_keys();

}  // namespace tz::models
