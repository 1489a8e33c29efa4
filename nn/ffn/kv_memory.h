// The feed-forward layer read as a key-value memory: an analysis probe, not a new layer.
// "Transformer Feed-Forward Layers Are Key-Value Memories" (Geva, Schuster, Berant, Levy
// 2021), arXiv:2012.14913.
//
// Shape letters: N positions (B·T flattened), C model width, F hidden width (keys), V vocab.
//   K = fc.weight [F, C]       row k_i is key i
//   U = proj.weight^T [F, C]   row v_i is value i   (the paper writes V; U avoids the clash with V = vocab)
//   m = f(x K^T + b1)  [N, F]  memory coefficients: m_i = f(x · k_i + b1_i)
//   FFN(x) = sum_i m_i v_i + b2 = m U + b2
// The paper studies (a) the inputs that make a key fire most (its "trigger examples": the
// text prefixes ending where m_i is largest) and (b) what a value promotes when read through
// the output embedding E [V, C]: the vocabulary distribution softmax(v_i E^T).
//
// Deviations: the paper's FFN has f = ReLU and no b1 (a 16-layer LM trained on WikiText-103);
// here f is whatever the FFN was built with (a gated FFN's coefficients are act(x W) ⊙ x V,
// and it has no key matrix) and b1 / b2 are kept (b2 is one constant vector,
// not a memory: it is reported apart). The paper finds trigger examples on training
// prefixes; `tensorzoo probe` reads the run's validation text, which the model never saw.
#pragma once

#include <functional>
#include <vector>

#include "nn/ffn/mlp.h"

namespace tz::nn {

// Keys K [F, C] (plain FFN only) and values U [F, C] of a trained MLP.
Tensor memory_keys(const MLP& mlp);
Tensor memory_values(const MLP& mlp);

// The per-key contributions m_i v_i of each position: x [N, C] → [N, F, C]. Summed over F
// (plus b2) they give the FFN output exactly (eval mode: no dropout).
Tensor key_contributions(const MLP& mlp, const Tensor& x);

// Value → vocabulary projection v_i E^T: [F, V] for the output embedding E [V, C].
Tensor value_vocab_projection(const MLP& mlp, const Tensor& E);

// Records the coefficients m of every forward of `mlp` while alive (installs mlp.on_keys,
// restores the previous hook on destruction). Positions are numbered in the order seen.
class KeyRecorder {
 public:
  explicit KeyRecorder(MLP& mlp);
  ~KeyRecorder();
  KeyRecorder(const KeyRecorder&) = delete;
  KeyRecorder& operator=(const KeyRecorder&) = delete;
  // All recorded coefficients as one f64 tensor [N, F] (N positions seen so far).
  Tensor coefficients() const;
  int64_t positions() const;

 private:
  MLP& mlp_;
  std::function<void(const Tensor&)> previous_;
  std::vector<Tensor> chunks_;  // [n_j, F] each
};

struct KeyHit {
  int64_t position = 0;  // row of the recorded coefficients
  double value = 0;      // m_i there
};

// For each key in `keys`, the `n` positions with the largest coefficient, largest first
// (ties: the earlier position first). coefficients: [N, F].
std::vector<std::vector<KeyHit>> top_activations(const Tensor& coefficients, const std::vector<int64_t>& keys,
                                                 int64_t n);

// The `k` keys whose largest coefficient over the recording is highest, highest first.
std::vector<int64_t> strongest_keys(const Tensor& coefficients, int64_t k);

// The `n` vocabulary ids a row of scores [V] ranks highest, highest first.
std::vector<int64_t> top_ids(const Tensor& row, int64_t n);

}  // namespace tz::nn
