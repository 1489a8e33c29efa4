// Reformer's LSH attention, the causal (language-model) form. "Reformer: The Efficient
// Transformer", Kitaev, Kaiser, Levskaya 2020, arXiv:2001.04451, sec. 2-3.
//
// Shapes: B batch, T positions, C model dim, H heads, D = C / H, n_b buckets, m chunk length,
// n_r hash rounds. Shared-QK attention:
//   a = split_heads(x W_qk), v = split_heads(x W_v)     [B, H, T, D]
//   queries a_i, keys k_j = a_j / |a_j|,  score s_ij = a_i . k_j / sqrt(D)
// Each round r hashes every position by a random rotation R_{r,h} [D, n_b / 2] (angular LSH):
//   h_r(i) = argmax [a_i R; -a_i R]                      (n_b = 1: bucket 0)
// Positions are sorted by (bucket, position) and cut into chunks of m; a query attends to
// the keys of its own and the previous chunk that share its bucket and are not after it:
//   P_i^r = { j <= i : h_r(j) = h_r(i), chunk_r(j) in {chunk_r(i) - 1, chunk_r(i)} }
// A query attends to itself only when it has no other key (the dot product with its own
// normalised key is nearly always the largest). The rounds are combined into softmax
// attention over the union P_i = U_r P_i^r: each round's part is renormalised by
// log-sum-exp (sec. 2.3), and a pair seen in an earlier round is masked in the later ones,
// which does what the paper's duplicate count N_ij does (each key counted once).
//   o_i = sum_{j in P_i} exp(s_ij) v_j / sum_{j in P_i} exp(s_ij),   y = merge_heads(o) W_o
//
// Deviation, for causality: chunks are counted within each bucket (every bucket starts a new
// chunk), so chunk_r(i) = #{j < i : h_r(j) = h_r(i)} / m depends on earlier positions only.
// Cut from the whole sorted sequence, as in the paper, a later token landing in a lower
// bucket shifts the chunk boundaries of earlier ones and changes what they attend to, which
// a language model must not allow. With per-bucket chunks the layer decodes token by token
// from a cache of keys, values, buckets and in-bucket counts.
// Deviation: the rotations R are drawn once per layer (a buffer, saved with the model), not
// afresh at each call: the same input gives the same output.
#pragma once

#include <memory>
#include <vector>

#include "nn/config.h"
#include "nn/layers.h"
#include "nn/mixer.h"

namespace tz::nn {

inline const Key<int64_t> kLshBuckets{"lsh_buckets", 8, "Reformer: hash buckets n_b (1 or even)"};
inline const Key<int64_t> kLshChunk{"lsh_chunk", 64, "Reformer: chunk length m (own + previous chunk attended)"};
inline const Key<int64_t> kLshRounds{"lsh_rounds", 2, "Reformer: hash rounds n_r, combined over their union"};

// Which keys each query of one (batch, head) sees, from the buckets of its rounds: the sets
// P_i^r above, each pair assigned to the first round that has it.
struct LshVisibility {
  int64_t rounds = 0, T = 0, m = 0;
  std::vector<int64_t> bucket, index;  // [rounds][T]: h_r(i); i's count of earlier positions in its bucket
  std::vector<uint8_t> alone;          // [T]: no other key in any round
  // j in P_i^r (j <= i), before duplicates are removed.
  bool in_round(int64_t r, int64_t i, int64_t j) const;
  // j in P_i^r and in no earlier round's set.
  bool visible(int64_t r, int64_t i, int64_t j) const;
  bool in_union(int64_t i, int64_t j) const;
  // From the buckets [rounds][T] of one (batch, head).
  static LshVisibility of(const int64_t* bucket, int64_t rounds, int64_t T, int64_t m);
};

// Decoding: the positions so far. In-bucket counts are recounted from the buckets.
struct LshState : MixerState {
  Tensor a, v;    // [B, H, capacity, D]
  Tensor bucket;  // i64 [B, H, rounds, capacity]
  void visit(StateVisitor& s) override {
    MixerState::visit(s);
    s.tensor("a", a);
    s.tensor("v", v);
    s.tensor("bucket", bucket);
  }
};

class ReformerLsh : public Mixer {
 public:
  ReformerLsh(int64_t dim, int64_t heads, int64_t buckets, int64_t chunk, int64_t rounds, Generator& gen);
  Tensor forward(const Tensor& x, const MixerContext& ctx, MixerState* state = nullptr) override;
  bool has_step() const override { return true; }
  std::unique_ptr<MixerState> make_state(int64_t batch, int64_t capacity, DType dtype) const override;
  std::string describe() const override;

  // The chunked computation above on split heads a, v [B, H, T, D] -> o [B, H, T, D].
  Tensor attend(const Tensor& a, const Tensor& v) const;
  // Buckets h_r(i) of a [B, H, T, D]: [B][H][rounds][T], flattened.
  std::vector<int64_t> hash(const Tensor& a) const;

  int64_t dim, heads, buckets, chunk, rounds;
  std::shared_ptr<Linear> qkv, out;  // qkv: C -> 2C (shared query-key, value)
  Tensor rotations;                  // [rounds, H, D, n_b / 2] (a buffer; empty when n_b = 1)

 private:
  Tensor decode(const Tensor& a, const Tensor& v, LshState& s) const;
};

}  // namespace tz::nn
