// Depthwise causal conv1d kernels (letters and formulas in conv1d.h).
//
// The references follow the formulas element by element. The fast versions keep the same
// summation order per output element but loop over channels innermost (contiguous in x, y
// and in a transposed copy of the weight, [K, C]), which the compiler vectorises:
//   forward and dx: parallel over the B*T rows, each row written by one task;
//   dweight, dbias: parallel over (b, block of channels) tasks, each writing its own
//   partial sums; the partials are then added in b order, so results do not depend on the
//   thread count.
#include "core/kernels/conv1d.h"

#include <algorithm>
#include <vector>

#include "core/parallel.h"

namespace tz::kernels {

namespace {
constexpr int64_t kBlockC = 128;  // channels per dweight task

// weight [C, K] -> wt [K, C], so the channel loop reads contiguous memory.
template <class Real>
std::vector<Real> transpose_weight(const Real* weight, int64_t C, int64_t K) {
  std::vector<Real> wt(size_t(K * C));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t k = 0; k < K; ++k) wt[k * C + c] = weight[c * K + k];
  return wt;
}
}  // namespace

// ---- forward ---------------------------------------------------------------------------------

template <class Real>
void conv1d_causal_forward_ref(Real* y, const Real* x, const Real* weight, const Real* bias, int64_t B, int64_t T,
                               int64_t C, int64_t K) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        Real acc = bias ? bias[c] : Real(0);
        for (int64_t k = 0; k < K; ++k) {
          int64_t s = t - K + 1 + k;  // the input time this tap reads
          if (s >= 0) acc += weight[c * K + k] * x[(b * T + s) * C + c];
        }
        y[(b * T + t) * C + c] = acc;
      }
}

template <class Real>
void conv1d_causal_forward(Real* y, const Real* x, const Real* weight, const Real* bias, int64_t B, int64_t T,
                           int64_t C, int64_t K) {
  if (B * T * C == 0) return;
  const std::vector<Real> wt = transpose_weight(weight, C, K);
  parallel_for(B * T, C * K, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = r % T;
      Real* yr = y + r * C;
      for (int64_t c = 0; c < C; ++c) yr[c] = bias ? bias[c] : Real(0);
      // Taps k with t - K + 1 + k < 0 read the zero padding: start after them.
      for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; ++k) {
        const Real* xr = x + (r - (K - 1 - k)) * C;  // row (b, t - K + 1 + k)
        const Real* wk = wt.data() + k * C;
        for (int64_t c = 0; c < C; ++c) yr[c] += wk[c] * xr[c];
      }
    }
  });
}

// ---- backward --------------------------------------------------------------------------------

template <class Real>
void conv1d_causal_backward_ref(Real* dx, Real* dweight, Real* dbias, const Real* dy, const Real* x, const Real* weight,
                                int64_t B, int64_t T, int64_t C, int64_t K) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        const Real g = dy[(b * T + t) * C + c];
        if (dbias) dbias[c] += g;
        for (int64_t k = 0; k < K; ++k) {
          int64_t s = t - K + 1 + k;
          if (s < 0) continue;
          if (dx) dx[(b * T + s) * C + c] += weight[c * K + k] * g;
          if (dweight) dweight[c * K + k] += x[(b * T + s) * C + c] * g;
        }
      }
}

template <class Real>
void conv1d_causal_backward(Real* dx, Real* dweight, Real* dbias, const Real* dy, const Real* x, const Real* weight,
                            int64_t B, int64_t T, int64_t C, int64_t K) {
  if (B * T * C == 0) return;
  // dx: row (b, s) collects dy at times t = s + K - 1 - k for the taps k with t < T.
  if (dx) {
    const std::vector<Real> wt = transpose_weight(weight, C, K);
    parallel_for(B * T, C * K, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t s = r % T;
        Real* dxr = dx + r * C;
        for (int64_t k = std::max<int64_t>(0, s + K - T); k < K; ++k) {
          const Real* gr = dy + (r + (K - 1 - k)) * C;  // row (b, s + K - 1 - k)
          const Real* wk = wt.data() + k * C;
          for (int64_t c = 0; c < C; ++c) dxr[c] += wk[c] * gr[c];
        }
      }
    });
  }
  if (!dweight && !dbias) return;
  // dweight, dbias: per-batch partial sums over t, partial[b] = [K + 1, C] (row K: bias).
  const int64_t nb = (C + kBlockC - 1) / kBlockC;
  std::vector<Real> partial(size_t(B * (K + 1) * C), Real(0));
  parallel_for(B * nb, T * std::min(C, kBlockC) * (K + 1), [&](int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / nb, c0 = (task % nb) * kBlockC, c1 = std::min(C, c0 + kBlockC);
      Real* pw = partial.data() + b * (K + 1) * C;  // [K + 1, C] for this b
      for (int64_t t = 0; t < T; ++t) {
        const Real* gr = dy + (b * T + t) * C;
        for (int64_t c = c0; c < c1; ++c) pw[K * C + c] += gr[c];
        for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; ++k) {
          const Real* xr = x + (b * T + t - K + 1 + k) * C;
          Real* pk = pw + k * C;
          for (int64_t c = c0; c < c1; ++c) pk[c] += xr[c] * gr[c];
        }
      }
    }
  });
  // Reduce the partials in b order.
  for (int64_t b = 0; b < B; ++b) {
    const Real* pw = partial.data() + b * (K + 1) * C;
    if (dweight)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < K; ++k) dweight[c * K + k] += pw[k * C + c];
    if (dbias)
      for (int64_t c = 0; c < C; ++c) dbias[c] += pw[K * C + c];
  }
}

template void conv1d_causal_forward<float>(float*, const float*, const float*, const float*, int64_t, int64_t, int64_t,
                                           int64_t);
template void conv1d_causal_forward<double>(double*, const double*, const double*, const double*, int64_t, int64_t,
                                            int64_t, int64_t);
template void conv1d_causal_forward_ref<float>(float*, const float*, const float*, const float*, int64_t, int64_t,
                                               int64_t, int64_t);
template void conv1d_causal_forward_ref<double>(double*, const double*, const double*, const double*, int64_t, int64_t,
                                                int64_t, int64_t);
template void conv1d_causal_backward<float>(float*, float*, float*, const float*, const float*, const float*, int64_t,
                                            int64_t, int64_t, int64_t);
template void conv1d_causal_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                             int64_t, int64_t, int64_t, int64_t);
template void conv1d_causal_backward_ref<float>(float*, float*, float*, const float*, const float*, const float*,
                                                int64_t, int64_t, int64_t, int64_t);
template void conv1d_causal_backward_ref<double>(double*, double*, double*, const double*, const double*, const double*,
                                                 int64_t, int64_t, int64_t, int64_t);

}  // namespace tz::kernels
