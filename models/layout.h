// The layout of the LM's blocks: which sublayers each block holds, in which order, with which
// mixer. With n = depth, s a mixer sublayer and f an FFN sublayer:
//   interleaved  (s f)^n, the Transformer's
//   sandwich     s^k (sf)^(n-k) f^k with k = sandwich_coef (Press et al. 2020, "Improving
//                Transformer Models by Reordering their Sublayers", arXiv:1911.03864): the same
//                n mixers and n FFNs, reordered; k = 0 is interleaved
//   "ssfsf..."   an explicit string: an s followed by an f forms one block, a lone one its own
//   macaron      each interleaved block becomes ½f s ½f (Lu et al. 2019, "Understanding and
//                Improving Transformer From a Multi-Particle Dynamic System Point of View",
//                arXiv:1906.02762): x += ½FFN0(norm0 x); x += mixer(norm1 x); x += ½FFN(norm2 x)
// `mixer` gives one id for every mixer sublayer or one per mixer sublayer in order: the
// per-layer plan of a hybrid model (e.g. ["retnet", "vanilla_mha", "retnet"]).
// Sublayer names: norm0/ffn0 (Macaron's first FFN, residual tag 0), norm1/mixer (tag 1),
// norm2/ffn (tag 2).
#pragma once

#include <string>
#include <vector>

#include "models/block.h"
#include "nn/config.h"
#include "nn/registry.h"

namespace tz::models {

inline const nn::Key<std::string> kLayout{"layout", "interleaved",
                                          "interleaved, sandwich, or a string of s (mixer) / f (FFN) sublayers"};
inline const nn::Key<int64_t> kSandwichCoef{"sandwich_coef", 0, "k of the sandwich layout s^k (sf)^(depth-k) f^k"};
inline const nn::Key<bool> kMacaron{"macaron", false, "½FFN, mixer, ½FFN blocks"};

// The sublayers of each block (dims.layer set per block). `shared`: one block applied
// repeatedly (the Universal Transformer), which needs the interleaved layout.
std::vector<std::vector<SublayerSpec>> plan_layout(const nn::Config& config, const nn::ModelDims& dims, bool shared);

// The keys read by plan_layout.
std::vector<nn::ConfigKey> layout_keys();

}  // namespace tz::models
