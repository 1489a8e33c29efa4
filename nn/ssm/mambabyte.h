// MambaByte: the Mamba LM over raw bytes, no tokenizer. "MambaByte: Token-free Selective
// State Space Model", Wang, Gangavarapu, Yan and Rush 2024, arXiv:2401.13660.
//
// The model is the Mamba stack of nn/ssm/mamba.h (residual blocks of RMSNorm and the Mamba
// mixer, layout "s" per block, no FFN) with the vocabulary of the 256 byte values; bytes are
// the ids. A byte sequence is about 4x longer than its subword one, which a recurrent state
// of fixed size decodes at constant cost per byte. The paper's speculative decoding (a small
// draft model proposes, MambaByte verifies in one forward and rolls its state back) is
// models/speculative.h.
#pragma once

#include <cstdint>
#include <string>

namespace tz::nn {

inline constexpr int64_t kByteVocab = 256;

// The JSON config of a MambaByte LM of width `dim` and `depth` Mamba blocks.
std::string mambabyte_config(int64_t dim, int64_t depth, int64_t context);

}  // namespace tz::nn
