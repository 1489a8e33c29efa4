// Ring attention: P workers, each owning one block of queries, keys and values, pass the
// key/value blocks around a ring and merge what they see by log-sum-exp. "Ring Attention
// with Blockwise Transformers for Near-Infinite Context", Liu, Zaharia, Abbeel 2023,
// arXiv:2310.01889, alg. 1.
//
// Shapes and the layer: nn/sparse_attention/common.h. The S key positions split into P
// contiguous shards [s_r, s_{r+1}); worker r owns shard r's keys and values and the queries
// whose positions fall in it. For steps t = 0 .. P-1 worker r holds the block of shard
// (r - t) mod P and, unless it lies in its future (causal: a shard after its own), computes
//   (o_{r,t}, lse_{r,t}) = causal attention(Q_r, K_src, V_src)    (fused kernel)
// then sends the block to r + 1 and receives one from r - 1 (RingExchange::exchange). After
// P steps: o_r, lse_r = merge_t (o_{r,t}, lse_{r,t})  (core/attention_partial.h).
// Backward, the same ring: the blocks travel with their gradients dK, dV; worker r adds
// its fused backward (with the merged o_r, lse_r) to them and to its own dQ_r; after P
// exchanges every block is home with its full gradient. Equal to full causal attention for
// every P.
// Workers are threads (ring_shards), or the ranks of a Communicator (core/communicator.h:
// MPI processes, sequence parallelism): both run the same worker, and differ only in the
// exchange (RingExchange::exchange, or Communicator::sendrecv: MPI_Sendrecv).
// Deviation: no BPT feed-forward fused into the ring steps (the model's FFN follows).
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>

#include "core/communicator.h"
#include "nn/sparse_attention/common.h"

namespace tz::nn {

inline const Key<int64_t> kRingShards{"ring_shards", 4, "Ring attention: workers P (shards of the sequence)"};

// What travels the ring: a shard's keys and values, and in the backward their gradients.
struct RingBlock {
  int64_t owner = 0;  // the shard
  Tensor k, v, dk, dv;
};

// An in-process ring of P workers: each rank's mailbox is a FIFO filled by rank - 1.
class RingExchange {
 public:
  explicit RingExchange(int64_t P) : P(P), inbox_(size_t(P)) {}
  // Sends `block` to rank + 1 and returns what rank - 1 sent (blocking). Throws once the
  // ring is aborted.
  RingBlock exchange(int64_t rank, RingBlock block);
  // A worker failed: every exchange waiting or to come throws, so no worker waits forever.
  void abort();
  const int64_t P;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::deque<RingBlock>> inbox_;
  bool aborted_ = false;
};

// Causal ring attention over P workers: q [B, H, T, D] at positions q_offset.., k, v
// [B, H, S, D]. Differentiable (the backward runs the ring again).
Tensor ring_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset, int64_t P);

// Sequence parallelism: causal self-attention over a sequence cut into comm.size() blocks,
// rank r holding block r (positions after the blocks of ranks < r; lengths may differ, and
// may be 0) of q [B, H, T_r, D] and k, v [B, G, T_r, D]. Returns rank r's rows of the output.
// Forward and backward are collective: every rank calls them together. Differentiable.
Tensor ring_attention(const Tensor& q, const Tensor& k, const Tensor& v, Communicator& comm);

}  // namespace tz::nn
