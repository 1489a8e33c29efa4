// TransNormerLLM's token mixer. "TransNormerLLM: A Faster and Better Large Language Model with
// Improved TransNormer", Qin, Li, Sun, Sun, Shen, Han, Wei, Lv, Luo, Qiao, Zhong 2023,
// arXiv:2307.14995.
//
// Shapes: B batch, T time, C model dim, H heads, D = C / H per head; layer l of L (depth).
// Lightning attention (nn/linear_rnn/lightning_attention2.h: SiLU q, k, decay λ_h =
// exp(-(8h / H)(1 - l / L)), SRMSNorm, gate U) with LRPE-d, the linearised relative
// position encoding with exponential decay (sec. 3.1.1):
//   a_ts = q_t . k_s λ^(t-s) cos(θ (t - s)) per channel,  θ_d = 10000^(-d / D)
// written with real features q -> [q cos(θ t), q sin(θ t)], k -> [k cos(θ s), k sin(θ s)]
// (cos(θ t) cos(θ s) + sin(θ t) sin(θ s) = cos(θ (t - s))): the kernel with Dk = 2D, log-decay
// log λ_h, no normaliser; its chunked form is the paper's lightning tiling.
//   O = SRMSNorm(o) ⊙ (X W_u),  out = O W_o
// The channel mixer, SGLU (X W_v ⊙ X W_u) W_o without activation, is the block's FFN:
// "ffn": "glu_variants", "ffn_glu": "bilinear".
// Deviations: θ is fixed, not learnt; the SRMSNorm has an eps (1e-6); no biases.
#pragma once

#include "nn/linear_rnn/lightning_attention2.h"
