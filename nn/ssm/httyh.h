// S4 with HiPPO-FouT, as derived in "How to Train Your HiPPO: State Space Models with
// Generalized Orthogonal Basis Projections", Gu, Johnson, Timalsina, Rudra and Ré 2022,
// arXiv:2206.12037.
//
// The layer is S4 (nn/ssm/s4.h: NPLR state matrix, Cauchy + Woodbury kernel, O(N) recurrence)
// initialised from a time-invariant orthogonal-basis projection (httyh_measure):
//   fout (default): the truncated Fourier basis on a sliding window of length 1 (in units of
//     1/Δ steps). Its impulse response e^{tA}B is the basis itself on the window,
//     q(t) = (1, √2 cos 2πkt, √2 sin 2πkt, ...) for t ∈ [0, 1) and ≈ 0 after (a finite sum of
//     exponentials cannot vanish on all of t > 1: the fit improves with N on the window, and a
//     residual stays after it): the kernel is a sliding Fourier transform of the input (core/kernels/ssm_kernels.h:
//     hippo_fout, the derivation and the rank-1 term that reads u(t - 1) back from the state).
//   legs: HiPPO-LegS, which the paper shows is the projection onto exponentially warped
//     Legendre polynomials (S4's init).
// The timescale: Δ_c log-uniform in [ssm_dt_min, ssm_dt_max], so that the windows 1/Δ (FouT)
// or the memory lengths (LegS) of the channels spread evenly over scales from 1/dt_max to
// 1/dt_min steps (the paper's section on initialising Δ).
#pragma once

#include "nn/ssm/s4.h"

namespace tz::nn {

inline const Key<std::string> kHttyhMeasure{"httyh_measure", "fout",
                                            "the basis projected on (How to Train Your HiPPO): fout or legs"};

S4Options httyh_options(const ModelDims& dims, const Config& config);

}  // namespace tz::nn
