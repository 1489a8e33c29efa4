// ETC's global-local attention, the causal language-model form. "ETC: Encoding Long and
// Structured Inputs in Transformers", Ainslie, Ontanon, Alberti, Cvicek, Fisher, Pham,
// Ravula, Sanghai, Wang, Yang 2020, arXiv:2004.08483, sec. 3.1.
//
// Shapes and the layer: nn/sparse_attention/common.h; n_g global tokens x^g [n_g, C] (learned
// auxiliary tokens of the layer), the long input x^l = x [B, T, C]. Of ETC's four pieces:
//   l2g: every long query sees every global key (the global tokens sit before position 0)
//   l2l: a long query at p sees long keys p - w < j <= p (radius w, looking back)
//   o_i = softmax over [k^g ; k^l_{l2l(i)}] of q_i . k / sqrt(D), values alike
// with k^g, v^g = x^g W_k, x^g W_v (the layer's own projections). The two pieces are one
// softmax merged by log-sum-exp (core/attention_partial.h); w >= T is full attention over
// [x^g; x^l] (causal in x^l).
// Deviation: g2g and g2l (the global tokens' own queries) are not computed: in a causal
// decoder a global token summarising later long tokens would leak the future, so the global
// tokens are fixed per layer; ETC's relative position vectors and CPC loss are not offered.
#pragma once

#include "nn/sparse_attention/common.h"

namespace tz::nn {

inline const Key<int64_t> kEtcGlobal{"etc_global", 4, "ETC: learned global tokens n_g (l2g keys)"};

class EtcGlobalLocal : public SparseAttention {
 public:
  EtcGlobalLocal(int64_t dim, int64_t heads, int64_t n_g, int64_t w, Generator& gen);
  // k^g, v^g [1, H, n_g, D] (differentiable).
  std::pair<Tensor, Tensor> global_kv() const;
  int64_t n_g, w;
  Tensor global;  // x^g [n_g, C]
};

}  // namespace tz::nn
