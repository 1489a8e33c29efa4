// T5 relative position bias. "Exploring the Limits of Transfer Learning with a Unified
// Text-to-Text Transformer", Raffel et al. 2019, arXiv:1910.10683 (§2.1; the bucket function
// is in its code, mesh_tensorflow's _relative_position_bucket).
//
// Shapes: H heads, T query positions, S key positions, NB buckets.
//   score_ij += b[bucket(j - i), h]        b: learned [NB, H], one table for all layers
// bucket(r), with n = i - j = -r:
//   bidirectional: NB /= 2; keys after the query (n < 0) use buckets NB.., n = |n|
//   causal:        n = max(n, 0), all NB buckets for the past
//   then with E = NB/2: n < E → bucket n (one per distance);
//   otherwise E + floor(log(n/E) / log(max_distance/E) · (NB - E)), at most NB - 1
// (log-spaced buckets up to max_distance; farther keys share the last bucket).
// As data: the relative-bias table [H, T + S - 1] (column S - 1 + i - j holds
// b[bucket(j - q_offset - i), h], an embedding lookup per distance, differentiable in b),
// which the attention core applies without storing a [T, S] bias. It is computed once per
// forward (the first layer) and reused by every layer.
// Options: rel_pos_num_buckets (32), rel_pos_max_distance (128), rel_pos_bidirectional (false).
#pragma once

#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

// The bucket of relative position r = j - i (key minus query).
int64_t t5_bucket(int64_t r, bool bidirectional, int64_t num_buckets, int64_t max_distance);

struct T5BiasOptions {
  int64_t heads = 0;           // H
  int64_t num_buckets = 32;    // NB
  int64_t max_distance = 128;  // distances beyond share the last bucket
  bool bidirectional = false;  // false for decoders (causal)
};

class T5RelativeBias : public PositionScheme {
 public:
  T5RelativeBias(const T5BiasOptions& options, Generator& gen);
  // The table [H, T + S - 1] for queries at key positions q_offset.. over keys 0..S-1. Within
  // a model (ctx with a carry), computed by the first layer and shared by the others.
  Tensor score_bias(int64_t heads, int64_t q_offset, int64_t T, int64_t S, DType dtype,
                    const MixerContext* ctx = nullptr) const override;
  bool biases_scores() const override { return true; }
  std::string describe() const override;
  // The table [H, T + S - 1] (no sharing), and the dense bias [H, T, S] it stands for (TUPE-R
  // adds it to its own dense term), for queries at key positions q_offset.. over keys 0..S-1.
  Tensor table_bias(int64_t q_offset, int64_t T, int64_t S) const;
  Tensor compute(int64_t q_offset, int64_t T, int64_t S, DType dtype) const;
  T5BiasOptions options;
  std::shared_ptr<Embedding> table;  // [NB, H]
  mutable int64_t computations = 0;  // how often a bias was computed (the proof counts it)
};

}  // namespace tz::nn
