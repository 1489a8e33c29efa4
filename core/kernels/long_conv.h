// Causal long convolution over time with one kernel per channel, forward and backward: the
// FFT path and the direct O(L^2) reference.
//
// Shape letters: B batch, C channels, L time steps; n = the FFT length (a power of two >= 2L).
//   u [B, C, L], k [C, L], D [C] (may be null), y [B, C, L], all contiguous:
//   y[b, c, t] = sum_{s <= t} k[c, t - s] u[b, c, s] + D[c] u[b, c, t]
// FFT path: zero-padded to n >= 2L the circular convolution equals the linear one on [0, L),
//   y[b, c] = irfft(rfft(u[b, c], n) . rfft(k[c], n))[:L] + D[c] u[b, c].
// Backward (all accumulate with +=; pass null to skip a gradient): the adjoint of a causal
// convolution is an anti-causal correlation, done with the same transforms (conj = time reversal):
//   du[b, c, s] += sum_{t >= s} dy[b, c, t] k[c, t - s] + D[c] dy[b, c, s]
//               =  irfft(rfft(dy[b, c], n) . conj(rfft(k[c], n)))[:L] + D[c] dy[b, c]
//   dk[c, j]    += sum_b sum_{t >= j} dy[b, c, t] u[b, c, t - j]
//               =  irfft(sum_b rfft(dy[b, c], n) . conj(rfft(u[b, c], n)))[:L]
//   dD[c]       += sum_{b, t} dy[b, c, t] u[b, c, t]
// (At lag t - s < 0 the index wraps to n + t - s >= L, where the padded k and u are zero.)
// Tail form (a decoding step: the outputs at the last T of L positions, by direct sums in
// O(T L) instead of transforming all L), time-major as a decoder keeps its history:
//   u [B, L, C] (batch b at u + b ub, rows of C contiguous: a view of a longer history),
//   k [L, C], D [C] (may be null), y [B, T, C], t = L - T + i:
//   y[b, i, c] = sum_{s <= t} k[t - s, c] u[b, s, c] + D[c] u[b, t, c]
#pragma once

#include <cstdint>

namespace tz::kernels {

// The FFT length the fast path uses for L steps.
int64_t long_conv_fft_length(int64_t L);

// Threads over the B x C rows (the kernel spectra first, over C).
template <class Real>
void long_conv_forward(Real* y, const Real* u, const Real* k, const Real* D, int64_t B, int64_t C, int64_t L);
template <class Real>
void long_conv_forward_ref(Real* y, const Real* u, const Real* k, const Real* D, int64_t B, int64_t C, int64_t L);

// Threads over B x T x blocks of channels.
template <class Real>
void long_conv_tail(Real* y, const Real* u, int64_t ub, const Real* k, const Real* D, int64_t B, int64_t C, int64_t L,
                    int64_t T);

// Threads over C (each channel sums its dk over b in order: deterministic for any thread count).
template <class Real>
void long_conv_backward(Real* du, Real* dk, Real* dD, const Real* dy, const Real* u, const Real* k, const Real* D,
                        int64_t B, int64_t C, int64_t L);
template <class Real>
void long_conv_backward_ref(Real* du, Real* dk, Real* dD, const Real* dy, const Real* u, const Real* k, const Real* D,
                            int64_t B, int64_t C, int64_t L);

}  // namespace tz::kernels
