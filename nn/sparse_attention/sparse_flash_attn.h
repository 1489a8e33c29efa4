// Sparse Flash attention, the hash-sparse form. "Faster Causal Attention Over Large Sequences
// Through Sparse Flash Attention", Pagliardini, Paliotta, Jaggi, Fleuret 2023, arXiv:2306.01160,
// sec. 3 (Hash-sparse).
//
// Shapes and the layer: nn/sparse_attention/common.h; n_b buckets. Queries and keys of each
// head are hashed by a fixed random projection R_h [D, n_b / 2] (angular LSH, as Reformer):
//   bucket(x) = argmax [x R_h ; -x R_h]                (n_b = 1: bucket 0)
// and attention keeps the pairs of equal buckets, causal on ORIGINAL positions:
//   visible(i, j) = bucket(q_i) = bucket(k_j) and j <= q_offset + i
// Per (b, h, bucket) the queries and keys are compacted (gathered in position order) and one
// fused tiled attention runs over them with the causal test done on the gathered original
// positions (PositionCausalMask), never on the compacted indices; the outputs are scattered
// back. A query whose bucket holds no key at or before it gets o = 0. One bucket is full
// causal attention. Hashes are taken on values and carry no gradient (as in the paper).
// Deviation: the paper's QK-dropping form and its single fused kernel over all buckets are
// not offered; the compaction runs one kernel call per (b, h, bucket).
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {

inline const Key<int64_t> kHashBuckets{"hash_buckets", 4, "Sparse Flash hash-sparse: buckets n_b (1 or even)"};

// Key j visible to query i iff kpos[j] <= qpos[i] (both non-decreasing: gathered positions).
class PositionCausalMask : public kernels::MaskTerm {
 public:
  PositionCausalMask(std::vector<int64_t> qpos, std::vector<int64_t> kpos)
      : qpos(std::move(qpos)), kpos(std::move(kpos)) {}
  kernels::Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                         int64_t q_offset) const override;
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const override;
  std::string describe() const override { return "position_causal"; }
  std::vector<int64_t> qpos, kpos;
};

// The buckets of x [n, D] (values) under head h's projection.
std::vector<int64_t> hash_buckets(const std::vector<double>& x, int64_t n, int64_t D, int64_t buckets, int64_t h);
Attend hash_sparse_attend(int64_t buckets);

}  // namespace tz::nn
