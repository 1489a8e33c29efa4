// Causal long convolution (letters and formulas in long_conv.h).
//
// Each task owns its scratch (a padded signal of n reals, two spectra of n / 2 + 1 and the
// plan's scratch) and writes only its own rows, so no task waits on another.
#include "core/kernels/long_conv.h"

#include <algorithm>
#include <complex>
#include <vector>

#include "core/kernels/fft.h"
#include "core/parallel.h"

namespace tz::kernels {

int64_t long_conv_fft_length(int64_t L) { return next_pow2(2 * L); }

namespace {

template <class Real>
struct Work {
  const RfftPlan<Real>& plan;
  int64_t L, n, M;
  std::vector<Real> pad;
  std::vector<std::complex<Real>> a, b, scratch;
  Work(int64_t L_, int64_t n_)
      : plan(rfft_plan<Real>(n_)),
        L(L_),
        n(n_),
        M(n_ / 2 + 1),
        pad(size_t(n_), Real(0)),
        a(static_cast<size_t>(M)),
        b(static_cast<size_t>(M)),
        scratch(size_t(plan.scratch)) {}
  // rfft of x[:L] zero-padded to n, into X
  void forward(std::complex<Real>* X, const Real* x) {
    for (int64_t t = 0; t < L; ++t) pad[size_t(t)] = x[t];
    for (int64_t t = L; t < n; ++t) pad[size_t(t)] = Real(0);
    rfft(X, pad.data(), plan, scratch.data());
  }
  // out[:L] += irfft(X)[:L]
  void inverse_add(Real* out, const std::complex<Real>* X) {
    irfft(pad.data(), X, plan, scratch.data());
    for (int64_t t = 0; t < L; ++t) out[t] += pad[size_t(t)];
  }
};

// The kernels' spectra [C, M].
template <class Real>
std::vector<std::complex<Real>> kernel_spectra(const Real* k, int64_t C, int64_t L, int64_t n) {
  const int64_t M = n / 2 + 1;
  std::vector<std::complex<Real>> K(size_t(C * M));
  parallel_for(C, 10 * n, [&](int64_t c0, int64_t c1) {
    Work<Real> w(L, n);
    for (int64_t c = c0; c < c1; ++c) w.forward(K.data() + c * M, k + c * L);
  });
  return K;
}

// a[i] *= (conj_b ? conj(b[i]) : b[i]), written out (std::complex's operator* takes a slow
// path for NaN checks).
template <class Real>
void spectrum_mul(std::complex<Real>* a, const std::complex<Real>* b, int64_t M, bool conj_b) {
  const Real s = conj_b ? Real(-1) : Real(1);
  for (int64_t i = 0; i < M; ++i) {
    const Real ar = a[i].real(), ai = a[i].imag(), br = b[i].real(), bi = s * b[i].imag();
    a[i] = {ar * br - ai * bi, ar * bi + ai * br};
  }
}
}  // namespace

// ---- forward ---------------------------------------------------------------------------------

template <class Real>
void long_conv_forward_ref(Real* y, const Real* u, const Real* k, const Real* D, int64_t B, int64_t C, int64_t L) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const Real* ur = u + (b * C + c) * L;
      for (int64_t t = 0; t < L; ++t) {
        Real acc = D ? D[c] * ur[t] : Real(0);
        for (int64_t s = 0; s <= t; ++s) acc += k[c * L + t - s] * ur[s];
        y[(b * C + c) * L + t] = acc;
      }
    }
}

template <class Real>
void long_conv_forward(Real* y, const Real* u, const Real* k, const Real* D, int64_t B, int64_t C, int64_t L) {
  if (B * C * L == 0) return;
  const int64_t n = long_conv_fft_length(L), M = n / 2 + 1;
  const std::vector<std::complex<Real>> K = kernel_spectra(k, C, L, n);
  parallel_for(B * C, 20 * n, [&](int64_t r0, int64_t r1) {
    Work<Real> w(L, n);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % C;
      const Real* ur = u + r * L;
      Real* yr = y + r * L;
      // term 1: the skip D u; term 2: the convolution, added to it
      for (int64_t t = 0; t < L; ++t) yr[t] = D ? D[c] * ur[t] : Real(0);
      w.forward(w.a.data(), ur);
      spectrum_mul(w.a.data(), K.data() + c * M, M, false);
      w.inverse_add(yr, w.a.data());
    }
  });
}

template <class Real>
void long_conv_tail(Real* y, const Real* u, int64_t ub, const Real* k, const Real* D, int64_t B, int64_t C, int64_t L,
                    int64_t T) {
  constexpr int64_t kBlock = 64;  // channels per task: one accumulator row that stays in registers/L1
  const int64_t blocks = (C + kBlock - 1) / kBlock;
  parallel_for(B * T * blocks, L * kBlock, [&](int64_t r0, int64_t r1) {
    Real acc[kBlock];
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / (T * blocks), i = r / blocks % T, c0 = r % blocks * kBlock, w = std::min(kBlock, C - c0);
      const int64_t t = L - T + i;
      const Real* ur0 = u + b * ub + c0;
      for (int64_t c = 0; c < w; ++c) acc[c] = D ? D[c0 + c] * ur0[t * C + c] : Real(0);
      for (int64_t s = 0; s <= t; ++s) {  // contiguous rows of C: the sum vectorises over channels
        const Real* kr = k + (t - s) * C + c0;
        const Real* ur = ur0 + s * C;
        for (int64_t c = 0; c < w; ++c) acc[c] += kr[c] * ur[c];
      }
      std::copy(acc, acc + w, y + (b * T + i) * C + c0);
    }
  });
}

// ---- backward --------------------------------------------------------------------------------

template <class Real>
void long_conv_backward_ref(Real* du, Real* dk, Real* dD, const Real* dy, const Real* u, const Real* k, const Real* D,
                            int64_t B, int64_t C, int64_t L) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const Real* ur = u + (b * C + c) * L;
      const Real* gr = dy + (b * C + c) * L;
      for (int64_t t = 0; t < L; ++t) {
        if (dD) dD[c] += gr[t] * ur[t];
        if (du && D) du[(b * C + c) * L + t] += D[c] * gr[t];
        for (int64_t s = 0; s <= t; ++s) {
          if (du) du[(b * C + c) * L + s] += k[c * L + t - s] * gr[t];
          if (dk) dk[c * L + t - s] += ur[s] * gr[t];
        }
      }
    }
}

template <class Real>
void long_conv_backward(Real* du, Real* dk, Real* dD, const Real* dy, const Real* u, const Real* k, const Real* D,
                        int64_t B, int64_t C, int64_t L) {
  if (B * C * L == 0) return;
  const int64_t n = long_conv_fft_length(L), M = n / 2 + 1;
  parallel_for(C, 40 * B * n, [&](int64_t c0, int64_t c1) {
    Work<Real> w(L, n);
    std::vector<std::complex<Real>> Kc(static_cast<size_t>(M)), acc(static_cast<size_t>(M));
    for (int64_t c = c0; c < c1; ++c) {
      if (du) w.forward(Kc.data(), k + c * L);
      std::fill(acc.begin(), acc.end(), std::complex<Real>(0, 0));
      for (int64_t b = 0; b < B; ++b) {
        const Real* ur = u + (b * C + c) * L;
        const Real* gr = dy + (b * C + c) * L;
        if (dD)
          for (int64_t t = 0; t < L; ++t) dD[c] += gr[t] * ur[t];
        w.forward(w.a.data(), gr);  // G = rfft(dy)
        if (dk) {                   // acc += G conj(U)
          w.forward(w.b.data(), ur);
          for (int64_t i = 0; i < M; ++i) {
            const Real gr_ = w.a[size_t(i)].real(), gi = w.a[size_t(i)].imag();
            const Real ur_ = w.b[size_t(i)].real(), ui = w.b[size_t(i)].imag();
            acc[size_t(i)] += std::complex<Real>(gr_ * ur_ + gi * ui, gi * ur_ - gr_ * ui);
          }
        }
        if (du) {
          Real* dur = du + (b * C + c) * L;
          if (D)
            for (int64_t t = 0; t < L; ++t) dur[t] += D[c] * gr[t];
          std::copy(w.a.begin(), w.a.end(), w.b.begin());
          spectrum_mul(w.b.data(), Kc.data(), M, true);  // G conj(K)
          w.inverse_add(dur, w.b.data());
        }
      }
      if (dk) w.inverse_add(dk + c * L, acc.data());
    }
  });
}

#define TZ_LONG_CONV_INSTANTIATE(R)                                                                                   \
  template void long_conv_forward<R>(R*, const R*, const R*, const R*, int64_t, int64_t, int64_t);                    \
  template void long_conv_forward_ref<R>(R*, const R*, const R*, const R*, int64_t, int64_t, int64_t);                \
  template void long_conv_tail<R>(R*, const R*, int64_t, const R*, const R*, int64_t, int64_t, int64_t, int64_t);     \
  template void long_conv_backward<R>(R*, R*, R*, const R*, const R*, const R*, const R*, int64_t, int64_t, int64_t); \
  template void long_conv_backward_ref<R>(R*, R*, R*, const R*, const R*, const R*, const R*, int64_t, int64_t,       \
                                          int64_t);
TZ_LONG_CONV_INSTANTIATE(float)
TZ_LONG_CONV_INSTANTIATE(double)
#undef TZ_LONG_CONV_INSTANTIATE

}  // namespace tz::kernels
