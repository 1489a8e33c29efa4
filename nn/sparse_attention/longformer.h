// Longformer's attention in its causal language-model form. "Longformer: The Long-Document
// Transformer", Beltagy, Peters, Cohan 2020, arXiv:2004.05150, sec. 3.1.
//
// Shapes and the layer: nn/sparse_attention/common.h.
//   visible(h, i, j) = j <= i and ( (i - j < w d_h and (i - j) mod d_h = 0)   (dilated window)
//                                   or j < g )                                (global prefix)
// d_h the dilation of head h (sparse_dilations, cycled over the heads: the paper dilates
// some heads of upper layers); as a causal LM the windows look back and the g global tokens
// are a prefix every query sees. One layout mask term (core/kernels/attention_layout.h).
// Deviations: the global tokens share the layer's projections (the paper's separate
// Q_g, K_g, V_g are not kept); w is the same in every layer (no staged growth).
#pragma once

#include "nn/sparse_attention/common.h"
