// The model-level config keys of the zoo's language model, each declared once with its type,
// default and doc. The options of layouts, token shift, recurrence, ACT, FCM and the residual
// kinds declare theirs in their own files; components (mixers, positions, FFNs, norms)
// declare theirs beside their code.
#pragma once

#include <string>
#include <vector>

#include "nn/config.h"

namespace tz::models {

inline const nn::Key<std::string> kModel{"model", "gpt",
                                         "the model: gpt (the decoder LM of these keys) or a wrapper id "
                                         "(encoder_decoder, vit_wrapper, continuous_wrapper, cross_attention)"};
inline const nn::Key<int64_t> kVocab{"vocab", 256, "vocabulary size (256 = bytes)"};
inline const nn::Key<int64_t> kDim{"dim", 256, "model width C"};
inline const nn::Key<int64_t> kDepth{"depth", 4, "number of blocks"};
inline const nn::Key<int64_t> kHeads{"heads", 4, "attention heads (must divide dim)"};
inline const nn::Key<int64_t> kContext{"context", 256, "longest sequence"};
inline const nn::Key<std::vector<std::string>> kMixer{
    "mixer", {"vanilla_mha"}, "sequence mixer id, or a list with one id per mixer sublayer"};
inline const nn::Key<std::string> kPos{"pos", "learned_abs_pe", "position scheme id (none: no positions)"};
inline const nn::Key<std::string> kFfn{"ffn", "ffn_mlp", "feed-forward id"};
inline const nn::Key<std::string> kNorm{"norm", "layernorm", "norm id of the blocks"};
inline const nn::Key<std::string> kFinalNorm{
    "final_norm", "auto",
    "norm id before the head, none, or auto (the block norm where the residual kind leaves the stream "
    "unnormalised: pre-norm add and gtrxl; none for post-norm and rezero)"};
inline const nn::Key<bool> kTieWeights{"tie_weights", true, "share the token embedding with the output head"};
inline const nn::Key<bool> kBias{"bias", true,
                                 "biases in the linear layers and LayerNorm (false: the Cramming recipe)"};
inline const nn::Key<double> kDropout{"dropout", 0.0, "residual dropout (inside the components)"};
inline const nn::Key<double> kEmbDropout{"emb_dropout", 0.0, "dropout after the token + position embedding"};
inline const nn::Key<double> kFfDropout{"ff_dropout", 0.0, "dropout on the FFN branch output"};

// The keys above, for the registry and the list of valid keys.
inline std::vector<nn::ConfigKey> model_keys() {
  return {kModel, kVocab, kDim,       kDepth,      kHeads, kContext, kMixer,      kPos,
          kFfn,   kNorm,  kFinalNorm, kTieWeights, kBias,  kDropout, kEmbDropout, kFfDropout};
}

}  // namespace tz::models
