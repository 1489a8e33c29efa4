// FlashAttention: exact attention in tiles with an online softmax, never storing the T x S
// probabilities. "FlashAttention: Fast and Memory-Efficient Exact Attention with
// IO-Awareness", Dao, Fu, Ermon, Rudra, Re 2022, arXiv:2205.14135, alg. 1 and 2.
//
// Shapes and the layer: nn/sparse_attention/common.h. Per query tile, over key tiles K_b, V_b:
//   S_b = Q K_b^T / sqrt(D),  m' = max(m, rowmax S_b),
//   O <- O e^{m - m'} + e^{S_b - m'} V_b,  l <- l e^{m - m'} + rowsum e^{S_b - m'},  m <- m'
//   o = O / l,  lse = m + log l   (saved; the backward recomputes each tile from it)
// This is the project's fused kernel (core/kernels/attention.h, tiles of 32 x 32) as a named
// mixer: causal, no mask terms, activations O(T) (q, k, v, o and lse are all it keeps).
#pragma once

#include "nn/sparse_attention/common.h"
