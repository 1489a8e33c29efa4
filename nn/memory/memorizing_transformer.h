// Memorizing Transformer: attention over the local segment plus kNN attention into an
// external memory of the (key, value) pairs of earlier segments. "Memorizing Transformers",
// Wu, Rabe, Hutchins, Szegedy, ICLR 2022, arXiv:2203.08913.
//
// Shapes: B batch, T positions of a call, C width, H heads, D = C / H head size, L segment
// length, N memory capacity (per batch row and head), n <= N pairs held, k neighbours.
// Positions are cut into segments of L (segment s holds positions sL .. sL + L - 1). For the
// query at position p of segment s (sec. 3):
//   q, k, v  = x W_qkv                                            [B, H, T, D] each
//   q^, k^   = q / |q|, k / |k|                   (keys and queries normalised, sec. 3.3)
//   A_local  = sum_j softmax_j(g_h q^_p . k^_j) v_j     j = sL .. p (causal, this segment)
//   A_mem    = sum_{j in K} softmax_j(g_h q^_p . K_j) V_j      K = top-k of q^_p . K_j over
//                                                              the n pairs (K_j, V_j) held
//   y_p      = σ(b_h) A_mem + (1 - σ(b_h)) A_local              (the learned gate per head)
//   out      = concat_h(y) W_o                                  [B, T, C]
// When segment s ends, its (k^, v) enter the FIFO memory and the oldest beyond N leave. The
// memory a state carries between calls is detached: no gradient reaches the pairs it holds or
// the inputs of the earlier calls that made them (the paper's memory of earlier training steps).
// The local attention sees the model's position scheme (rotary or relative-bias schemes);
// memory pairs carry no position, as in the paper. Search is exact: brute force over the n
// pairs (q^ K^T, then the top-k kernel of core/kernels/sort.h: exactly k hits, ties to the
// older pair), the hits gathered; with k >= n it is softmax attention over the whole memory.
//
// Training and decoding run the same segments: forward over a long sequence runs them in
// order, writing the memory segment by segment; with a state (make_state), the call
// continues the sequence and its memory, token by token or a chunk at a time, and gives the
// same outputs. A fresh state is an empty memory (the paper clears it per document).
//
// Deviations from the paper:
// - the local context is the current segment; the paper's also holds the previous segment
//   (a Transformer-XL cache with a sliding-window mask).
// - the paper normalises q and k (citing QKNorm, Henry et al. 2020) but gives no score
//   scale: we take QKNorm's learned scale g_h per head, initialised to log2(L^2 - L).
// - the memory lives in the layer and in its state; the trainer's batches each start empty
//   (train with context = several segments), where the paper carries it across the
//   training steps of a document. Within one call, the pairs of the call's own earlier
//   segments keep their gradient (f64 gradcheck holds for the whole forward); the paper's
//   step is one segment, so its memory never holds them.
// - while the memory is empty (the first segment) y = A_local.
// - exact kNN only (the paper uses approximate kNN for its large memories).
// - the catalogue row says keys and values are normalised; the paper normalises keys and
//   queries, which is what this does (values are not).
#pragma once

#include <memory>
#include <string>

#include "core/random.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kKnnK{"knn_k", 32, "Memorizing Transformer: neighbours k retrieved per query and head"};
inline const Key<int64_t> kKnnMemory{"knn_memory", 65536,
                                     "Memorizing Transformer: FIFO memory capacity N ((key, value) pairs per head)"};
inline const Key<int64_t> kKnnSegment{
    "knn_segment", 512,
    "Memorizing Transformer: segment length L (the local span; the memory grows a segment at a time)"};

struct MemorizingOptions {
  int64_t dim = 0;             // C
  int64_t heads = 0;           // H (divides C)
  int64_t segment = 512;       // L
  int64_t memory = 65536;      // N
  int64_t k = 32;              // neighbours
  bool bias = true;            // biases of the projections
  double dropout = 0.0;        // on the output projection
  double out_init_std = 0.02;  // of W_o
};

// The memory and the current segment's keys; tensors are undefined while empty.
struct MemorizingState : MixerState {
  Tensor seg_k, seg_v;  // [B, H, <= L, D]: k^ and v of the current segment so far
  Tensor mem_k, mem_v;  // [B, H, n, D]: the memory, oldest first
  void visit(StateVisitor& s) override {
    MixerState::visit(s);
    s.tensor("seg_k", seg_k);
    s.tensor("seg_v", seg_v);
    s.tensor("mem_k", mem_k);
    s.tensor("mem_v", mem_v);
  }
};

class MemorizingAttention : public Mixer {
 public:
  MemorizingAttention(const MemorizingOptions& options, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;
  // q^ of x [B, T, C]: the normalised queries [B, H, T, D] the search ranks the memory with.
  Tensor queries(const Tensor& x) const;

  MemorizingOptions options;
  std::shared_ptr<Linear> qkv, out;
  std::shared_ptr<Dropout> drop;
  Tensor scale;  // g [H]: the score scale of the normalised q . k
  Tensor gate;   // b [H]: the memory's share is σ(b)

 private:
  // One piece of a call inside one segment: q^ and q = g q^ [B, H, n, D], k^, v of its positions;
  // `kept`: the state is the caller's, so what it keeps is detached.
  Tensor piece(const Tensor& q_hat, const Tensor& q, const Tensor& k, const Tensor& v, MemorizingState& s,
               const MixerContext& ctx, bool kept);
};

// Memory attention: softmax(g_h q^ . K_j) over the memory rows j of the k largest q^ . K_j
// (knn_search; all n rows when k >= n), of q_hat [B, H, T, D] over mem_k, mem_v [B, H, n, D]
// -> [B, H, T, D]. g [H] scales the scores (undefined = 1). The hits are gathered, [B, H, T,
// k, D]: no [T, n] weights are kept for backward.
Tensor knn_memory_attention(const Tensor& q_hat, const Tensor& g, const Tensor& mem_k, const Tensor& mem_v, int64_t k);
// The exact search: indices i64 [B, H, T, min(k, n)] of the memory rows with the largest
// q_hat . mem_k, largest first (ties: lower index first).
Tensor knn_search(const Tensor& q_hat, const Tensor& mem_k, int64_t k);

}  // namespace tz::nn
