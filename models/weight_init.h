// Initialisation of the LM's block weights, chosen by the `init` key:
//   gpt2     N(0, 0.02), each layer's own default: nothing is redrawn
//   xavier   W ~ U(−γ, γ), γ = √(6 / (d_in + d_out))         (Glorot & Bengio 2010)
//   ds_init  γ = α √(6 / (d_in + d_out)) / √l, l = 1..depth the block's index: Depth-Scaled
//            Init (Zhang, Titov & Sennrich 2019, "Improving Deep Transformer with Depth-Scaled
//            Initialization and Merged Attention", arXiv:1908.06725), α = ds_init_alpha ≤ 1
// applied to the weight of every nn::Linear inside a block (the attention and FFN
// projections, W [d_out, d_in]); embeddings, the head, biases and parameters that are not a
// Linear's weight (gates, decays, convolution taps) keep their own initialisation. With
// xavier the variance every block adds to a pre-norm stream is about the same, so the
// stream's variance grows linearly with depth; with ds_init block l adds about 1/l of it,
// and the stream grows like the harmonic sum, log(depth). The values are drawn after every
// other parameter, so those stay as without.
#pragma once

#include <vector>

#include "core/random.h"
#include "nn/config.h"
#include "nn/module.h"

namespace tz::models {

inline const nn::Key<std::string> kInit{"init", "gpt2",
                                        "block weight init: gpt2 (N(0, 0.02)), xavier (uniform Glorot) or "
                                        "ds_init (Glorot / √layer, Zhang et al. 2019)"};
inline const nn::Key<double> kDsInitAlpha{"ds_init_alpha", 1.0, "ds_init: the α ≤ 1 on the bound α√(6/(in+out))/√l"};

inline std::vector<nn::ConfigKey> weight_init_keys() { return {kInit, kDsInitAlpha}; }

// Checks the keys; redraws the Linear weights of `blocks` (block i is layer l = i + 1) when
// `init` is not gpt2.
void init_block_weights(const nn::Config& config, const std::vector<std::shared_ptr<nn::Module>>& blocks,
                        Generator& gen);

}  // namespace tz::models
