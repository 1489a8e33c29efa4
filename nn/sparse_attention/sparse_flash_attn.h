// Sparse Flash attention, the hash-sparse form. "Faster Causal Attention Over Large Sequences
// Through Sparse Flash Attention", Pagliardini, Paliotta, Jaggi, Fleuret 2023, arXiv:2306.01160,
// sec. 3 (Hash-sparse).
//
// Shapes and the layer: nn/sparse_attention/common.h; n_b buckets. Queries and keys of each
// head are hashed by a fixed random projection R_h [D, n_b / 2] (angular LSH, as Reformer):
//   bucket(x) = argmax [x R_h ; -x R_h]                (n_b = 1: bucket 0)
// and attention keeps the pairs of equal buckets, causal on ORIGINAL positions:
//   visible(i, j) = bucket(q_i) = bucket(k_j) and j <= q_offset + i
// Per (b, h) the queries and keys are gathered in (bucket, position) order and one fused
// tiled attention runs over all of them, the tiles between different buckets skipped and the
// causal test done on the gathered original positions (BucketCausalMask), never on the
// gathered indices; the outputs are gathered back to their positions. A query whose bucket holds no key at or before it
// gets o = 0. One bucket is full causal attention. Hashes are taken on values and carry no gradient (as in the paper).
// Deviation: the paper's QK-dropping form is not offered.
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {

inline const Key<int64_t> kHashBuckets{"hash_buckets", 4, "Sparse Flash hash-sparse: buckets n_b (1 or even)"};

// Over queries and keys gathered per (b, h) in (bucket, position) order: key j is visible to
// query i iff their buckets are equal and kpos[j] <= qpos[i] (original positions). Sorted by
// bucket, the tiles between different buckets classify hidden and are skipped.
class BucketCausalMask : public kernels::MaskTerm {
 public:
  // Arrays [B, H, T] (queries) and [B, H, S] (keys), row-major.
  BucketCausalMask(std::vector<int64_t> qb, std::vector<int64_t> qpos, std::vector<int64_t> kb,
                   std::vector<int64_t> kpos, int64_t B, int64_t H, int64_t T, int64_t S);
  kernels::Tile classify(int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                         int64_t q_offset) const override;
  void fill(int64_t b, int64_t h, int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t q_offset, uint8_t* out,
            int64_t ld) const override;
  std::string describe() const override { return "bucket_causal"; }
  void check(int64_t B, int64_t H, int64_t S) const override;
  std::vector<int64_t> qb, qpos, kb, kpos;
  int64_t B, H, T, S;
};

// The buckets of x [n, D] (values) under head h's projection.
std::vector<int64_t> hash_buckets(const std::vector<double>& x, int64_t n, int64_t D, int64_t buckets, int64_t h);
Attend hash_sparse_attend(int64_t buckets);

}  // namespace tz::nn
