// Mamba's selective scan kernels (letters and formulas in scan.h).
//
// The reference walks one (batch, channel) at a time and, in the backward, stores that
// channel's T x N states (the memory the fused form avoids). The fast form runs one task
// per (batch, block of channels): time outside, the block's channels and the N state
// entries inside, so B_t and C_t are read once per step for the block. It saves the
// states at chunk starts; the backward re-runs one chunk at a time from its saved state
// into a small buffer (L x block x N) and walks it in reverse. Parameter gradients summed
// over the batch (dA, dDskip) or over channels (dBm, dCm) go into per-task partial buffers
// that are added in a fixed order, so results do not depend on how tasks meet threads.
// For f32 with SIMD on, a task is one call of the block kernels (selective_scan_simd.inl),
// which hold the block's channels in the vector lanes; the loops here are their reference.
#include <algorithm>
#include <cmath>
#include <optional>
#include <type_traits>
#include <vector>

#include "core/kernels/scan.h"
#include "core/parallel.h"

namespace tz::kernels {

namespace {
constexpr int64_t kBlockSel = 16;  // channels per task

template <class Real>
Real sigmoid(Real x) {
  return Real(1) / (Real(1) + std::exp(-x));
}

// The block kernels of the SIMD level in use, for f32 (none for f64 or with SIMD off).
struct BlockKernels {
  decltype(&avx2::selective_forward_block) forward;
  decltype(&avx2::selective_backward_block) backward;
};
template <class Real>
std::optional<BlockKernels> block_kernels() {
  if (!std::is_same_v<Real, float> || !simd_enabled()) return std::nullopt;
  if (simd_level() == SimdLevel::avx512)
    return BlockKernels{avx512::selective_forward_block, avx512::selective_backward_block};
  return BlockKernels{avx2::selective_forward_block, avx2::selective_backward_block};
}

// The channel groups of the backward: each group's tasks add into their own dBm / dCm
// partial buffer. Enough groups to keep every thread busy when B is small.
int64_t channel_groups(int64_t B, int64_t D) {
  const int64_t want = (2 * int64_t(get_num_threads()) + B - 1) / B;
  return std::clamp<int64_t>(want, 1, (D + kBlockSel - 1) / kBlockSel);
}
}  // namespace

// ---- forward -------------------------------------------------------------------------------

template <class Real>
void selective_scan_forward_ref(Real* out, int64_t out_bstride, Real* hT, const Real* u, const Real* delta,
                                const Real* A, const Real* Bm, const Real* Cm, const Real* Dskip, const Real* z,
                                const Real* h0, const SelectiveScanArgs& n) {
  const int64_t B = n.B, T = n.T, D = n.D, N = n.N;
  std::vector<Real> h(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t k = 0; k < N; ++k) h[k] = h0 ? h0[(b * D + d) * N + k] : Real(0);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t r = (b * T + t) * D + d;
        const Real dt = delta[r], x = u[r];
        Real y = 0;
        for (int64_t k = 0; k < N; ++k) {
          h[k] = std::exp(dt * A[d * N + k]) * h[k] + dt * Bm[(b * T + t) * N + k] * x;
          y += Cm[(b * T + t) * N + k] * h[k];
        }
        if (Dskip) y += Dskip[d] * x;
        if (z) y *= z[r] * sigmoid(z[r]);
        out[b * out_bstride + t * D + d] = y;
      }
      for (int64_t k = 0; k < N; ++k) hT[(b * D + d) * N + k] = h[k];
    }
}

template <class Real>
void selective_scan_forward(Real* out, int64_t out_bstride, Real* hT, Real* ckpt, const Real* u, const Real* delta,
                            const Real* A, const Real* Bm, const Real* Cm, const Real* Dskip, const Real* z,
                            const Real* h0, const SelectiveScanArgs& n) {
  const int64_t B = n.B, T = n.T, D = n.D, N = n.N, L = std::max<int64_t>(1, n.chunk);
  const int64_t nb = (D + kBlockSel - 1) / kBlockSel, nc = (T + L - 1) / L;
  const std::optional<BlockKernels> fast = block_kernels<Real>();
  parallel_for(B * nb, T * kBlockSel * N * 8, [&](int64_t j0, int64_t j1) {
    std::vector<Real> h(size_t(kBlockSel * N));
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t b = j / nb, d0 = (j % nb) * kBlockSel, d1 = std::min(D, d0 + kBlockSel), nd = d1 - d0;
      if constexpr (std::is_same_v<Real, float>)
        if (fast) {
          fast->forward(out, out_bstride, hT, ckpt, h0, {u, delta, A, Bm, Cm, Dskip, z}, n, {b, d0, d1});
          continue;
        }
      if (h0)
        std::copy(h0 + (b * D + d0) * N, h0 + (b * D + d1) * N, h.begin());
      else
        std::fill(h.begin(), h.end(), Real(0));
      for (int64_t t = 0; t < T; ++t) {
        if (ckpt && t % L == 0) std::copy(h.begin(), h.begin() + nd * N, ckpt + ((b * nc + t / L) * D + d0) * N);
        const int64_t r = (b * T + t) * D;
        const Real *Bt = Bm + (b * T + t) * N, *Ct = Cm + (b * T + t) * N;
        for (int64_t d = d0; d < d1; ++d) {
          const Real dt = delta[r + d], x = u[r + d], dtx = dt * x;
          const Real* Ad = A + d * N;
          Real* hd = h.data() + (d - d0) * N;
          Real y = 0;
          for (int64_t k = 0; k < N; ++k) {
            hd[k] = std::exp(dt * Ad[k]) * hd[k] + dtx * Bt[k];
            y += Ct[k] * hd[k];
          }
          if (Dskip) y += Dskip[d] * x;
          if (z) y *= z[r + d] * sigmoid(z[r + d]);
          out[b * out_bstride + t * D + d] = y;
        }
      }
      std::copy(h.begin(), h.begin() + nd * N, hT + (b * D + d0) * N);
    }
  });
}

// ---- backward ------------------------------------------------------------------------------

namespace {
// The reverse walk over steps [t0, t1) of channels [d0, d1) of batch b. hs holds the states
// h_{t0 - 1} (row 0) .. h_{t1 - 1} (row t1 - t0) of the block, each row nd x N; dh (nd x N)
// enters as dL/dh_{t1 - 1} from later steps and leaves as dL/dh_{t0 - 1}. dA_acc [nd, N],
// dD_acc [nd], dB_acc / dC_acc [T, N] (this task's partials) accumulate.
template <class Real>
void reverse_steps(const SelectiveScanGrads& gr, Real* dh, Real* dA_acc, Real* dD_acc, Real* dB_acc, Real* dC_acc,
                   const Real* hs, const Real* g, int64_t g_bstride, const Real* u, const Real* delta, const Real* A,
                   const Real* Bm, const Real* Cm, const Real* Dskip, const Real* z, int64_t b, int64_t t0, int64_t t1,
                   int64_t d0, int64_t d1, const SelectiveScanArgs& n) {
  const int64_t T = n.T, D = n.D, N = n.N, nd = d1 - d0;
  for (int64_t t = t1 - 1; t >= t0; --t) {
    const int64_t r = (b * T + t) * D;
    const Real *Bt = Bm + (b * T + t) * N, *Ct = Cm + (b * T + t) * N;
    Real *dBt = dB_acc + t * N, *dCt = dC_acc + t * N;
    const Real* h_now = hs + (t - t0 + 1) * nd * N;
    const Real* h_prev = hs + (t - t0) * nd * N;
    for (int64_t d = d0; d < d1; ++d) {
      const int64_t i = d - d0;
      const Real dt = delta[r + d], x = u[r + d], dtx = dt * x;
      const Real *hn = h_now + i * N, *hp = h_prev + i * N, *Ad = A + d * N;
      Real* dhd = dh + i * N;
      // the output: y = C.h + Dskip x, out = y silu(z)
      Real dy = g[b * g_bstride + t * D + d];
      if (z) {
        Real y = 0;
        for (int64_t k = 0; k < N; ++k) y += Ct[k] * hn[k];
        if (Dskip) y += Dskip[d] * x;
        const Real zz = z[r + d], s = sigmoid(zz);
        if (gr.dz) static_cast<Real*>(gr.dz)[r + d] = dy * y * s * (Real(1) + zz * (Real(1) - s));
        dy *= zz * s;
      }
      Real du = 0, dd = 0;
      if (Dskip) dD_acc[i] += dy * x, du += dy * Dskip[d];
      // the state: h_t = Abar h_{t-1} + delta B u
      for (int64_t k = 0; k < N; ++k) {
        dCt[k] += dy * hn[k];
        const Real dhk = dhd[k] + dy * Ct[k];
        const Real Abar = std::exp(dt * Ad[k]);
        const Real dAbar = dhk * hp[k] * Abar;
        dd += dAbar * Ad[k] + dhk * Bt[k] * x;
        dA_acc[i * N + k] += dAbar * dt;
        dBt[k] += dhk * dtx;
        du += dhk * dt * Bt[k];
        dhd[k] = dhk * Abar;
      }
      if (gr.du) static_cast<Real*>(gr.du)[r + d] = du;
      if (gr.ddelta) static_cast<Real*>(gr.ddelta)[r + d] = dd;
    }
  }
}

// Adds the partial buffers into the outputs in a fixed order.
template <class Real>
void reduce_partials(const SelectiveScanGrads& gr, const std::vector<Real>& pA, const std::vector<Real>& pD,
                     const std::vector<Real>& pB, const std::vector<Real>& pC, int64_t G, const SelectiveScanArgs& n) {
  const int64_t B = n.B, T = n.T, D = n.D, N = n.N;
  if (gr.dA) {
    Real* dA = static_cast<Real*>(gr.dA);
    std::fill(dA, dA + D * N, Real(0));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < D * N; ++k) dA[k] += pA[b * D * N + k];
  }
  if (gr.dDskip) {
    Real* dD = static_cast<Real*>(gr.dDskip);
    std::fill(dD, dD + D, Real(0));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < D; ++d) dD[d] += pD[b * D + d];
  }
  for (auto [dst, partial] : {std::pair{gr.dBm, &pB}, std::pair{gr.dCm, &pC}}) {
    if (!dst) continue;
    Real* o = static_cast<Real*>(dst);
    const std::vector<Real>* src = partial;  // a plain variable: OpenMP cannot capture a binding
    parallel_for(B * T, G * N, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t k = 0; k < N; ++k) {
          Real s = 0;
          for (int64_t q = 0; q < G; ++q) s += (*src)[(q * B * T + r) * N + k];
          o[r * N + k] = s;
        }
    });
  }
}
}  // namespace

template <class Real>
void selective_scan_backward_ref(const SelectiveScanGrads& gr, const Real* g, int64_t g_bstride, const Real* ghT,
                                 const Real* u, const Real* delta, const Real* A, const Real* Bm, const Real* Cm,
                                 const Real* Dskip, const Real* z, const Real* h0, const SelectiveScanArgs& n) {
  const int64_t B = n.B, T = n.T, D = n.D, N = n.N;
  std::vector<Real> pA(size_t(B * D * N), Real(0)), pD(size_t(B * D), Real(0)), pB(size_t(B * T * N), Real(0)),
      pC(pB.size(), Real(0));
  std::vector<Real> hs(size_t((T + 1) * N)), dh(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t d = 0; d < D; ++d) {
      // every state of this channel: hs row t + 1 = h_t
      for (int64_t k = 0; k < N; ++k) hs[k] = h0 ? h0[(b * D + d) * N + k] : Real(0);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t k = 0; k < N; ++k) {
          const int64_t r = (b * T + t) * D + d;
          hs[(t + 1) * N + k] =
              std::exp(delta[r] * A[d * N + k]) * hs[t * N + k] + delta[r] * Bm[(b * T + t) * N + k] * u[r];
        }
      for (int64_t k = 0; k < N; ++k) dh[k] = ghT ? ghT[(b * D + d) * N + k] : Real(0);
      reverse_steps<Real>(gr, dh.data(), pA.data() + (b * D + d) * N, pD.data() + b * D + d, pB.data() + b * T * N,
                          pC.data() + b * T * N, hs.data(), g, g_bstride, u, delta, A, Bm, Cm, Dskip, z, b, 0, T, d,
                          d + 1, n);
      if (gr.dh0) std::copy(dh.begin(), dh.end(), static_cast<Real*>(gr.dh0) + (b * D + d) * N);
    }
  reduce_partials<Real>(gr, pA, pD, pB, pC, 1, n);
}

template <class Real>
void selective_scan_backward(const SelectiveScanGrads& gr, const Real* g, int64_t g_bstride, const Real* ghT,
                             const Real* ckpt, const Real* u, const Real* delta, const Real* A, const Real* Bm,
                             const Real* Cm, const Real* Dskip, const Real* z, const SelectiveScanArgs& n) {
  const int64_t B = n.B, T = n.T, D = n.D, N = n.N, L = std::max<int64_t>(1, n.chunk);
  const int64_t nb = (D + kBlockSel - 1) / kBlockSel, nc = (T + L - 1) / L;
  const int64_t G = channel_groups(B, D), per_group = (nb + G - 1) / G;
  const std::optional<BlockKernels> fast = block_kernels<Real>();
  std::vector<Real> pA(size_t(B * D * N), Real(0)), pD(size_t(B * D), Real(0)), pB(size_t(G * B * T * N), Real(0)),
      pC(pB.size(), Real(0));
  parallel_for(B * G, T * D / G * N * 16, [&](int64_t j0, int64_t j1) {
    std::vector<Real> hs(size_t((L + 1) * kBlockSel * N)), dh(size_t(kBlockSel * N));
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t b = j / G, q = j % G;
      Real* dB_acc = pB.data() + (q * B + b) * T * N;
      Real* dC_acc = pC.data() + (q * B + b) * T * N;
      for (int64_t blk = q * per_group; blk < std::min(nb, (q + 1) * per_group); ++blk) {
        const int64_t d0 = blk * kBlockSel, d1 = std::min(D, d0 + kBlockSel), nd = d1 - d0;
        if constexpr (std::is_same_v<Real, float>)
          if (fast) {
            fast->backward(gr, {pA.data() + (b * D + d0) * N, pD.data() + b * D + d0, dB_acc, dC_acc}, g, g_bstride,
                           ghT, ckpt, {u, delta, A, Bm, Cm, Dskip, z}, n, {b, d0, d1});
            continue;
          }
        if (ghT)
          std::copy(ghT + (b * D + d0) * N, ghT + (b * D + d1) * N, dh.begin());
        else
          std::fill(dh.begin(), dh.end(), Real(0));
        for (int64_t c = nc - 1; c >= 0; --c) {
          const int64_t t0 = c * L, t1 = std::min(T, t0 + L);
          // recompute the chunk's states from the one saved at its start
          const Real* saved = ckpt + ((b * nc + c) * D + d0) * N;
          std::copy(saved, saved + nd * N, hs.begin());
          for (int64_t t = t0; t < t1; ++t) {
            const int64_t r = (b * T + t) * D;
            const Real* Bt = Bm + (b * T + t) * N;
            const Real* prev = hs.data() + (t - t0) * nd * N;
            Real* next = hs.data() + (t - t0 + 1) * nd * N;
            for (int64_t d = d0; d < d1; ++d) {
              const Real dt = delta[r + d], dtx = dt * u[r + d];
              const Real* Ad = A + d * N;
              const int64_t i = (d - d0) * N;
              for (int64_t k = 0; k < N; ++k) next[i + k] = std::exp(dt * Ad[k]) * prev[i + k] + dtx * Bt[k];
            }
          }
          reverse_steps<Real>(gr, dh.data(), pA.data() + (b * D + d0) * N, pD.data() + b * D + d0, dB_acc, dC_acc,
                              hs.data(), g, g_bstride, u, delta, A, Bm, Cm, Dskip, z, b, t0, t1, d0, d1, n);
        }
        if (gr.dh0) std::copy(dh.begin(), dh.begin() + nd * N, static_cast<Real*>(gr.dh0) + (b * D + d0) * N);
      }
    }
  });
  reduce_partials<Real>(gr, pA, pD, pB, pC, G, n);
}

#define TZ_SEL_INSTANTIATE(Real)                                                                                    \
  template void selective_scan_forward_ref<Real>(Real*, int64_t, Real*, const Real*, const Real*, const Real*,      \
                                                 const Real*, const Real*, const Real*, const Real*, const Real*,   \
                                                 const SelectiveScanArgs&);                                         \
  template void selective_scan_forward<Real>(Real*, int64_t, Real*, Real*, const Real*, const Real*, const Real*,   \
                                             const Real*, const Real*, const Real*, const Real*, const Real*,       \
                                             const SelectiveScanArgs&);                                             \
  template void selective_scan_backward_ref<Real>(const SelectiveScanGrads&, const Real*, int64_t, const Real*,     \
                                                  const Real*, const Real*, const Real*, const Real*, const Real*,  \
                                                  const Real*, const Real*, const Real*, const SelectiveScanArgs&); \
  template void selective_scan_backward<Real>(const SelectiveScanGrads&, const Real*, int64_t, const Real*,         \
                                              const Real*, const Real*, const Real*, const Real*, const Real*,      \
                                              const Real*, const Real*, const Real*, const SelectiveScanArgs&);
TZ_SEL_INSTANTIATE(float)
TZ_SEL_INSTANTIATE(double)
#undef TZ_SEL_INSTANTIATE

}  // namespace tz::kernels
