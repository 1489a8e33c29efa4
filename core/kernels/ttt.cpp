// TTT-Linear's fused dual form (formulas in ttt.h). One task per (batch, head) walks its
// mini-batches in order (the weights W, b are the recurrence); within a mini-batch the
// products are small GEMMs (gemm_rows) and the LayerNorms are row loops. Gradients of the
// parameters shared by the batch (W0, b0 when not batched, γ, β) go into per-task partial
// buffers added in a fixed order, so results do not depend on how tasks meet threads.
#include "core/kernels/ttt.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <vector>

#include "core/kernels/gemm.h"
#include "core/parallel.h"

namespace tz::kernels {

namespace {
constexpr double kLnEps = 1e-6;

// The saved buffer of one (batch, head): the weights [W | b] at each mini-batch's start,
// then per token ẑ, g, ẑ_q [T, D] and ρ, ρ_q [T].
struct SavedLayout {
  int64_t nmb, per_start, per_head;
  explicit SavedLayout(const TttSizes& n)
      : nmb((n.T + n.minibatch - 1) / n.minibatch),
        per_start(n.D * n.D + n.D),
        per_head(nmb * per_start + 3 * n.T * n.D + 2 * n.T) {}
};

template <class Real>
struct HeadSaved {
  Real *starts, *zh, *g, *zqh, *rho, *rhoq;
  HeadSaved(Real* base, const SavedLayout& s, const TttSizes& n) {
    starts = base;
    zh = starts + s.nmb * s.per_start;
    g = zh + n.T * n.D;
    zqh = g + n.T * n.D;
    rho = zqh + n.T * n.D;
    rhoq = rho + n.T;
  }
};

// ẑ and ρ of one row z [D]; returns ρ.
template <class Real>
Real normalise(Real* zh, const Real* z, int64_t D) {
  Real mean = 0;
#pragma omp simd reduction(+ : mean)
  for (int64_t j = 0; j < D; ++j) mean += z[j];
  mean /= Real(D);
  Real var = 0;
#pragma omp simd reduction(+ : var)
  for (int64_t j = 0; j < D; ++j) var += (z[j] - mean) * (z[j] - mean);
  const Real rho = Real(1) / std::sqrt(var / Real(D) + Real(kLnEps));
  for (int64_t j = 0; j < D; ++j) zh[j] = (z[j] - mean) * rho;
  return rho;
}

// The LN backward at one row: dz = ρ (dẑ - mean dẑ - ẑ mean(dẑ ẑ)) - ρ² ẑ dρ / D, where dẑ is
// the gradient reaching ẑ and dρ the one reaching ρ directly (mean dẑ is the centring's term:
// ẑ has mean 0).
template <class Real>
void ln_backward_row(Real* dz, const Real* dzh, const Real* zh, Real rho, Real drho, int64_t D) {
  Real s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t j = 0; j < D; ++j) s1 += dzh[j], s2 += dzh[j] * zh[j];
  s1 /= Real(D), s2 /= Real(D);
  const Real c = rho * rho * drho / Real(D);
  for (int64_t j = 0; j < D; ++j) dz[j] = rho * (dzh[j] - s1 - zh[j] * s2) - c * zh[j];
}

template <class Real>
std::unique_ptr<Real[]> scratch(int64_t n) {
  return std::make_unique_for_overwrite<Real[]>(size_t(n));
}
}  // namespace

int64_t ttt_linear_saved_size(const TttSizes& n) { return n.B * n.H * SavedLayout(n).per_head; }

template <class Real>
void ttt_linear_forward(const TttOutputs<Real>& out, const TttInputs<Real>& in, const TttSizes& n) {
  const int64_t H = n.H, T = n.T, D = n.D, MB = n.minibatch;
  const SavedLayout lay(n);
  parallel_for(n.B * H, T * D * D * 8, [&](int64_t j0, int64_t j1) {
    // [K; Q] and [Z; Zq] (one product with W for both), G, A = tril(Q K^T), the row's g' and
    // e; ẑ, g, ẑ_q when nothing is saved
    auto buf = scratch<Real>(4 * MB * D + MB * D + MB * MB + 2 * D + 3 * MB * D);
    Real *KQ = buf.get(), *Z = KQ + 2 * MB * D, *G = Z + 2 * MB * D, *A = G + MB * D, *ge = A + MB * MB, *e = ge + D,
         *tmp = e + D;
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t h = j % H, wj = n.w_batched ? j : h;
      const Real *gam = in.ln_w + h * D, *bet = in.ln_b + h * D;
      Real *W = out.W + j * D * D, *bv = out.b + j * D;
      std::copy(in.W0 + wj * D * D, in.W0 + (wj + 1) * D * D, W);
      std::copy(in.b0 + wj * D, in.b0 + (wj + 1) * D, bv);
      const int64_t row0 = j * T;  // this head's first token
      std::optional<HeadSaved<Real>> sv;
      if (out.saved) sv.emplace(out.saved + j * lay.per_head, lay, n);
      for (int64_t m = 0, s = 0; s < T; ++m, s += MB) {
        const int64_t L = std::min(MB, T - s), r = (row0 + s) * D;
        const Real *Q = in.q + r, *K = in.k + r, *V = in.v + r, *eta = in.eta + row0 + s;
        if (sv) {
          Real* st = sv->starts + m * lay.per_start;
          std::copy(W, W + D * D, st);
          std::copy(bv, bv + D, st + D * D);
        }
        Real *zh = sv ? sv->zh + s * D : tmp, *g = sv ? sv->g + s * D : tmp + MB * D;
        Real* zqh = sv ? sv->zqh + s * D : tmp + 2 * MB * D;
        // [Z; Zq] = [K; Q] W, then Z += b, e = LN(Z) + K - V, g = the LN backward of 2 e, G = η g
        std::copy(K, K + L * D, KQ);
        std::copy(Q, Q + L * D, KQ + L * D);
        gemm_rows(Z, D, KQ, D, false, W, D, false, 2 * L, D, D, Real(1), Real(0));
        Real* Zq = Z + L * D;
        for (int64_t t = 0; t < L; ++t) {
          Real* z = Z + t * D;
          for (int64_t c = 0; c < D; ++c) z[c] += bv[c];
          const Real rho = normalise(zh + t * D, z, D);
          if (sv) sv->rho[s + t] = rho;
          Real loss = 0, m1 = 0, m2 = 0;
#pragma omp simd reduction(+ : loss, m1, m2)
          for (int64_t c = 0; c < D; ++c) {
            const Real ec = gam[c] * zh[t * D + c] + bet[c] + K[t * D + c] - V[t * D + c];
            loss += ec * ec;
            ge[c] = 2 * ec * gam[c];
            m1 += ge[c], m2 += ge[c] * zh[t * D + c];
          }
          out.loss[row0 + s + t] = loss;
          m1 /= Real(D), m2 /= Real(D);
          for (int64_t c = 0; c < D; ++c) {
            g[t * D + c] = rho * (ge[c] - m1 - zh[t * D + c] * m2);
            G[t * D + c] = eta[t] * g[t * D + c];
          }
        }
        // Zq = Q W + b - tril(Q K^T) G - cumsum(G)
        gemm_rows(A, L, Q, D, false, K, D, true, L, L, D, Real(1), Real(0));
        for (int64_t t = 0; t < L; ++t) std::fill(A + t * L + t + 1, A + (t + 1) * L, Real(0));
        gemm_rows(Zq, D, A, L, false, G, D, false, L, D, L, Real(-1), Real(1));
        std::fill(e, e + D, Real(0));  // the running cumsum(G)
        for (int64_t t = 0; t < L; ++t) {
          Real *z = Zq + t * D, *o = out.z + r + t * D;
          for (int64_t c = 0; c < D; ++c) e[c] += G[t * D + c], z[c] += bv[c] - e[c];
          const Real rho = normalise(zqh + t * D, z, D);
          if (sv) sv->rhoq[s + t] = rho;
          for (int64_t c = 0; c < D; ++c) o[c] = Q[t * D + c] + gam[c] * zqh[t * D + c] + bet[c];
        }
        // W' = W - K^T G, b' = b - sum_t G_t (e holds the sum)
        gemm_rows(W, D, K, D, true, G, D, false, D, D, L, Real(-1), Real(1));
        for (int64_t c = 0; c < D; ++c) bv[c] -= e[c];
      }
    }
  });
}

template <class Real>
void ttt_linear_backward(const TttGrads<Real>& d, const Real* dz, const Real* dW, const Real* db, const Real* dloss,
                         const Real* saved, const TttInputs<Real>& in, const TttSizes& n) {
  const int64_t B = n.B, H = n.H, T = n.T, D = n.D, MB = n.minibatch, BH = B * H;
  const SavedLayout lay(n);
  // per task: dW, db of its weights at the mini-batch start (the dW0, db0 rows), dγ, dβ
  std::vector<Real> pW(size_t(BH * D * D)), pb(size_t(BH * D)), pg(size_t(BH * D)), pbeta(size_t(BH * D));
  parallel_for(BH, T * D * D * 16, [&](int64_t j0, int64_t j1) {
    // [dZq; dZ], [Q; K], [dZq; dZ] W^T, A, dA, dG, G and per row: dẑ, dg', e
    auto buf = scratch<Real>(6 * MB * D + 2 * MB * MB + 2 * MB * D + 3 * D);
    Real *dZZ = buf.get(), *QK = dZZ + 2 * MB * D, *P = QK + 2 * MB * D, *A = P + 2 * MB * D, *dA = A + MB * MB,
         *dG = dA + MB * MB, *G = dG + MB * D, *dzh = G + MB * D, *dge = dzh + D, *e = dge + D;
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t h = j % H, row0 = j * T;
      const Real *gam = in.ln_w + h * D, *bet = in.ln_b + h * D;
      const HeadSaved<const Real> sv(saved + j * lay.per_head, lay, n);
      Real *dWj = pW.data() + j * D * D, *dbj = pb.data() + j * D, *dgam = pg.data() + j * D,
           *dbet = pbeta.data() + j * D;
      if (dW)
        std::copy(dW + j * D * D, dW + (j + 1) * D * D, dWj);
      else
        std::fill(dWj, dWj + D * D, Real(0));
      if (db)
        std::copy(db + j * D, db + (j + 1) * D, dbj);
      else
        std::fill(dbj, dbj + D, Real(0));
      std::fill(dgam, dgam + D, Real(0));
      std::fill(dbet, dbet + D, Real(0));
      const int64_t nmb = lay.nmb;
      for (int64_t m = nmb - 1; m >= 0; --m) {
        const int64_t s = m * MB, L = std::min(MB, T - s), r = (row0 + s) * D;
        const Real *Q = in.q + r, *K = in.k + r, *V = in.v + r, *eta = in.eta + row0 + s;
        const Real* W = sv.starts + m * lay.per_start;
        const Real *zh = sv.zh + s * D, *g = sv.g + s * D, *zqh = sv.zqh + s * D;
        Real *dQ = d.dq + r, *dK = d.dk + r, *dV = d.dv + r, *dZq = dZZ, *dZ = dZZ + L * D;
        for (int64_t t = 0; t < L * D; ++t) G[t] = eta[t / D] * g[t];
        // z = Q + LN(Zq): dZq, dγ, dβ; dQ starts with dz
        for (int64_t t = 0; t < L; ++t) {
          Real* o = dQ + t * D;
          if (dz)
            std::copy(dz + r + t * D, dz + r + (t + 1) * D, o);
          else
            std::fill(o, o + D, Real(0));
          for (int64_t c = 0; c < D; ++c) {
            dgam[c] += o[c] * zqh[t * D + c], dbet[c] += o[c];
            dzh[c] = o[c] * gam[c];
          }
          ln_backward_row(dZq + t * D, dzh, zqh + t * D, sv.rhoq[s + t], Real(0), D);
        }
        // Zq = Q W + b - A G - cumsum(G), A = tril(Q K^T)
        gemm_rows(A, L, Q, D, false, K, D, true, L, L, D, Real(1), Real(0));
        gemm_rows(dA, L, dZq, D, false, G, D, true, L, L, D, Real(-1), Real(0));
        for (int64_t t = 0; t < L; ++t) {
          std::fill(A + t * L + t + 1, A + (t + 1) * L, Real(0));
          std::fill(dA + t * L + t + 1, dA + (t + 1) * L, Real(0));
        }
        gemm_rows(dQ, D, dA, L, false, K, D, false, L, D, L, Real(1), Real(1));
        gemm_rows(dK, D, dA, L, true, Q, D, false, L, D, L, Real(1), Real(0));
        gemm_rows(dG, D, A, L, true, dZq, D, false, L, D, L, Real(-1), Real(0));
        std::fill(e, e + D, Real(0));  // the reverse cumsum of dZq
        for (int64_t t = L - 1; t >= 0; --t)
          for (int64_t c = 0; c < D; ++c) e[c] += dZq[t * D + c], dG[t * D + c] -= e[c] + dbj[c];
        // W' = W - K^T G with dW' = dWj (not yet this mini-batch's terms); b' through dbj above
        gemm_rows(dK, D, G, D, false, dWj, D, true, L, D, D, Real(-1), Real(1));
        gemm_rows(dG, D, K, D, false, dWj, D, false, L, D, D, Real(-1), Real(1));
        // G = η g, g = ρ (g' - mean g' - ẑ mean(g' ẑ)), g' = 2 e γ, e = γ ẑ + β + K - V
        for (int64_t t = 0; t < L; ++t) {
          const Real *zt = zh + t * D, *gt = g + t * D, rho = sv.rho[s + t];
          Real deta = 0, drho = 0, m2 = 0, s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : m2, deta)
          for (int64_t c = 0; c < D; ++c) {
            e[c] = gam[c] * zt[c] + bet[c] + K[t * D + c] - V[t * D + c];
            m2 += 2 * e[c] * gam[c] * zt[c];
            deta += dG[t * D + c] * gt[c];
          }
          m2 /= Real(D);
          d.deta[row0 + s + t] = deta;
#pragma omp simd reduction(+ : drho, s1, s2)
          for (int64_t c = 0; c < D; ++c) {
            const Real dg = eta[t] * dG[t * D + c];
            drho += dg * gt[c];  // g = ρ a: ∂/∂ρ = a = g / ρ (divided below)
            dge[c] = rho * dg;   // ∂/∂a
            s1 += dge[c], s2 += dge[c] * zt[c];
          }
          drho /= rho, s1 /= Real(D), s2 /= Real(D);
          const Real dl = dloss ? dloss[row0 + s + t] : Real(0);
          for (int64_t c = 0; c < D; ++c) {
            const Real ge = 2 * e[c] * gam[c], da = dge[c];
            dzh[c] = -da * m2 - ge * s2;    // a = g' - mean g' - ẑ mean(g' ẑ), through ẑ
            dge[c] = da - s1 - zt[c] * s2;  // ... through g'
            const Real de = 2 * gam[c] * dge[c] + 2 * e[c] * dl;
            dgam[c] += 2 * e[c] * dge[c] + de * zt[c];
            dbet[c] += de;
            dK[t * D + c] += de;
            dV[t * D + c] = -de;
            dzh[c] += gam[c] * de;
          }
          ln_backward_row(dZ + t * D, dzh, zt, rho, drho, D);
        }
        // [Zq; Z] = [Q; K] W + b (with the other terms above): one product each way
        gemm_rows(P, D, dZZ, D, false, W, D, true, 2 * L, D, D, Real(1), Real(0));
        for (int64_t i = 0; i < L * D; ++i) dQ[i] += P[i], dK[i] += P[L * D + i];
        std::copy(Q, Q + L * D, QK);
        std::copy(K, K + L * D, QK + L * D);
        gemm_rows(dWj, D, QK, D, true, dZZ, D, false, D, D, 2 * L, Real(1), Real(1));
        for (int64_t t = 0; t < 2 * L; ++t)
          for (int64_t c = 0; c < D; ++c) dbj[c] += dZZ[t * D + c];
      }
    }
  });
  // the parameter gradients: W0, b0 per row of the batch or summed over it; γ, β summed
  const int64_t Wrows = n.w_batched ? BH : H;
  std::fill(d.dW0, d.dW0 + Wrows * D * D, Real(0));
  std::fill(d.db0, d.db0 + Wrows * D, Real(0));
  std::fill(d.dln_w, d.dln_w + H * D, Real(0));
  std::fill(d.dln_b, d.dln_b + H * D, Real(0));
  for (int64_t j = 0; j < BH; ++j) {
    const int64_t w = n.w_batched ? j : j % H, h = j % H;
    for (int64_t i = 0; i < D * D; ++i) d.dW0[w * D * D + i] += pW[j * D * D + i];
    for (int64_t c = 0; c < D; ++c) {
      d.db0[w * D + c] += pb[j * D + c];
      d.dln_w[h * D + c] += pg[j * D + c];
      d.dln_b[h * D + c] += pbeta[j * D + c];
    }
  }
}

#define TZ_TTT_INSTANTIATE(Real)                                                                                     \
  template void ttt_linear_forward<Real>(const TttOutputs<Real>&, const TttInputs<Real>&, const TttSizes&);          \
  template void ttt_linear_backward<Real>(const TttGrads<Real>&, const Real*, const Real*, const Real*, const Real*, \
                                          const Real*, const TttInputs<Real>&, const TttSizes&);
TZ_TTT_INSTANTIATE(float)
TZ_TTT_INSTANTIATE(double)
#undef TZ_TTT_INSTANTIATE

}  // namespace tz::kernels
