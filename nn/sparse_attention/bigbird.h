// BigBird's block-sparse attention in its causal form. "Big Bird: Transformers for Longer
// Sequences", Zaheer, Guruganesh, Dubey, Ainslie, Alberti, Ontanon, Pham, Ravula, Wang,
// Yang, Ahmed 2020, arXiv:2007.14062, sec. 2 and app. D (the blocked implementation).
//
// Shapes and the layer: nn/sparse_attention/common.h; blocks of b positions, qb = floor(i / b).
//   visible(h, i, j) = j <= i and ( |qb - kb| <= wb          (window of blocks)
//                                   or kb < gb or qb < gb    (global blocks: a prefix)
//                                   or kb in R_h(qb) )       (r random key blocks)
// R_h(qb): r distinct blocks of 0..qb drawn by a generator seeded with (sparse_seed, h, qb),
// so a decoding step draws what the whole forward drew. One layout mask term per (H, S)
// (core/kernels/attention_layout.h); with b a multiple of 32 every tile off the diagonal is
// whole (visited or skipped).
// Deviation: the global tokens are the first gb blocks of the sequence (ITC form, causal:
// a prefix), not extra tokens.
#pragma once

#include "nn/sparse_attention/common.h"
