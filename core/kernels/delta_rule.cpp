// The delta rule: the recurrent and chunked (WY / UT) forms, forward and backward. Math and
// shapes: delta_rule.h.
#include "core/kernels/delta_rule.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/kernels/gemm.h"
#include "core/parallel.h"

namespace tz::kernels {

namespace {

void check_sizes(const DeltaSizes& n, int64_t chunk, const char* fn) {
  TZ_CHECK(n.B >= 0 && n.H >= 0 && n.T >= 0 && n.Dk > 0 && n.Dv > 0, fn, ": bad sizes B ", n.B, " H ", n.H, " T ", n.T,
           " Dk ", n.Dk, " Dv ", n.Dv);
  TZ_CHECK(chunk >= 1, fn, ": chunk must be >= 1, got ", chunk);
}

template <class T>
void start_state(T* S, const DeltaInputs<T>& in, const DeltaSizes& n, int64_t i) {
  const int64_t N = n.Dk * n.Dv;
  if (in.h0)
    std::copy(in.h0 + i * N, in.h0 + (i + 1) * N, S);
  else
    std::fill(S, S + N, T(0));
}

// One chunk of L tokens of one head: its rows of q, k, v, beta, and the quantities of the WY
// form from the start state S0 (delta_rule.h): G = K K^T, Tm = (I + A)^-1, Dd = V - K S0,
// R = diag(beta) Dd, U = Tm R, P = Q K^T ⊙ M. Row strides: C for the L x L matrices.
template <class T>
struct Chunk {
  std::vector<T> G, Tm, P, dP, Dd, R, U, dU, dR;
  int64_t C, Dk, Dv;
  Chunk(int64_t C_, int64_t Dk_, int64_t Dv_)
      : G(size_t(C_ * C_)),
        Tm(size_t(C_ * C_)),
        P(size_t(C_ * C_)),
        dP(size_t(C_ * C_)),
        Dd(size_t(C_ * Dv_)),
        R(size_t(C_ * Dv_)),
        U(size_t(C_ * Dv_)),
        dU(size_t(C_ * Dv_)),
        dR(size_t(C_ * Dv_)),
        C(C_),
        Dk(Dk_),
        Dv(Dv_) {}

  void prepare(const T* q, const T* k, const T* v, const T* beta, const T* S0, int64_t L) {
    gemm_rows<T>(G.data(), C, k, Dk, false, k, Dk, true, L, L, Dk, 1, 0);
    for (int64_t i = 0; i < L; ++i) {  // (I + A) Tm = I, row by row
      T* ti = Tm.data() + i * C;
      std::fill(ti, ti + L, T(0));
      ti[i] = 1;
      for (int64_t m = 0; m < i; ++m) {
        const T a = beta[i] * G[size_t(i * C + m)];
        if (a == T(0)) continue;
        const T* tm = Tm.data() + m * C;
        for (int64_t j = 0; j <= m; ++j) ti[j] -= a * tm[j];
      }
    }
    gemm_rows<T>(Dd.data(), Dv, k, Dk, false, S0, Dv, false, L, Dv, Dk, -1, 0);
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < Dv; ++j) {
        T& d = Dd[size_t(i * Dv + j)];
        d += v[i * Dv + j];
        R[size_t(i * Dv + j)] = beta[i] * d;
      }
    gemm_rows<T>(U.data(), Dv, Tm.data(), C, false, R.data(), Dv, false, L, Dv, L, 1, 0);
    gemm_rows<T>(P.data(), C, q, Dk, false, k, Dk, true, L, L, Dk, 1, 0);
    for (int64_t i = 0; i < L; ++i) std::fill(P.data() + i * C + i + 1, P.data() + i * C + L, T(0));
  }
};

}  // namespace

template <class T>
void delta_rule_recurrent(T* out, T* state, const DeltaInputs<T>& in, const DeltaSizes& n) {
  check_sizes(n, 1, "delta_rule_recurrent");
  const int64_t Dk = n.Dk, Dv = n.Dv, N = Dk * Dv;
  parallel_for(n.B * n.H, n.T * N * 4, [&](int64_t i0, int64_t i1) {
    std::vector<T> u(static_cast<size_t>(Dv));
    for (int64_t i = i0; i < i1; ++i) {
      T* S = state + i * N;
      start_state(S, in, n, i);
      for (int64_t t = 0; t < n.T; ++t) {
        const int64_t r = i * n.T + t;
        const T *q = in.q + r * Dk, *k = in.k + r * Dk, *v = in.v + r * Dv, b = in.beta[r];
        for (int64_t j = 0; j < Dv; ++j) u[size_t(j)] = v[j];  // u = beta (v - k S)
        for (int64_t c = 0; c < Dk; ++c)
          for (int64_t j = 0; j < Dv; ++j) u[size_t(j)] -= k[c] * S[c * Dv + j];
        for (int64_t j = 0; j < Dv; ++j) u[size_t(j)] *= b;
        T* o = out + r * Dv;
        std::fill(o, o + Dv, T(0));
        for (int64_t c = 0; c < Dk; ++c)
          for (int64_t j = 0; j < Dv; ++j) {
            S[c * Dv + j] += k[c] * u[size_t(j)];
            o[j] += q[c] * S[c * Dv + j];
          }
      }
    }
  });
}

template <class T>
void delta_rule_chunked(T* out, T* state, const DeltaInputs<T>& in, const DeltaSizes& n, int64_t chunk, T* starts) {
  check_sizes(n, chunk, "delta_rule_chunked");
  const int64_t Dk = n.Dk, Dv = n.Dv, N = Dk * Dv, C = std::min(chunk, std::max<int64_t>(n.T, 1));
  const int64_t nc = (n.T + C - 1) / C;
  parallel_for(n.B * n.H, n.T * (C * (C + Dk + Dv) + N) * 3, [&](int64_t i0, int64_t i1) {
    Chunk<T> w(C, Dk, Dv);
    for (int64_t i = i0; i < i1; ++i) {
      T* S = state + i * N;
      T* kept = starts ? starts + i * (nc + 1) * N : nullptr;
      start_state(S, in, n, i);
      for (int64_t c = 0; c < nc; ++c) {
        const int64_t t0 = c * C, L = std::min(C, n.T - t0), r = i * n.T + t0;
        if (kept) std::copy(S, S + N, kept + c * N);
        const T *q = in.q + r * Dk, *k = in.k + r * Dk;
        w.prepare(q, k, in.v + r * Dv, in.beta + r, S, L);
        T* o = out + r * Dv;
        gemm_rows<T>(o, Dv, q, Dk, false, S, Dv, false, L, Dv, Dk, 1, 0);                  // Q S_0
        gemm_rows<T>(o, Dv, w.P.data(), C, false, w.U.data(), Dv, false, L, Dv, L, 1, 1);  // + P U
        gemm_rows<T>(S, Dv, k, Dk, true, w.U.data(), Dv, false, Dk, Dv, L, 1, 1);          // S_0 + K^T U
      }
      if (kept) std::copy(S, S + N, kept + nc * N);
    }
  });
}

template <class T>
void delta_rule_recurrent_backward(const DeltaGrads<T>& d, const T* dout, const T* dstate, const DeltaInputs<T>& in,
                                   const DeltaSizes& n) {
  check_sizes(n, 1, "delta_rule_recurrent_backward");
  const int64_t Dk = n.Dk, Dv = n.Dv, N = Dk * Dv;
  parallel_for(n.B * n.H, n.T * N * 10, [&](int64_t i0, int64_t i1) {
    std::vector<T> states(size_t((n.T + 1) * N)), dS(static_cast<size_t>(N)), u(static_cast<size_t>(Dv)),
        kdS(static_cast<size_t>(Dv));
    for (int64_t i = i0; i < i1; ++i) {
      std::fill(d.dq + i * n.T * Dk, d.dq + (i + 1) * n.T * Dk, T(0));  // the loop below accumulates
      std::fill(d.dk + i * n.T * Dk, d.dk + (i + 1) * n.T * Dk, T(0));
      std::fill(d.dv + i * n.T * Dv, d.dv + (i + 1) * n.T * Dv, T(0));
      start_state(states.data(), in, n, i);
      for (int64_t t = 0; t < n.T; ++t) {  // every state, by the forward loop's update
        const int64_t r = i * n.T + t;
        const T *k = in.k + r * Dk, *v = in.v + r * Dv, b = in.beta[r];
        const T* Sp = states.data() + t * N;
        T* St = states.data() + (t + 1) * N;
        for (int64_t j = 0; j < Dv; ++j) u[size_t(j)] = v[j];
        for (int64_t c = 0; c < Dk; ++c)
          for (int64_t j = 0; j < Dv; ++j) u[size_t(j)] -= k[c] * Sp[c * Dv + j];
        for (int64_t c = 0; c < Dk; ++c)
          for (int64_t j = 0; j < Dv; ++j) St[c * Dv + j] = Sp[c * Dv + j] + b * k[c] * u[size_t(j)];
      }
      if (dstate)
        std::copy(dstate + i * N, dstate + (i + 1) * N, dS.begin());
      else
        std::fill(dS.begin(), dS.end(), T(0));
      for (int64_t t = n.T - 1; t >= 0; --t) {
        const int64_t r = i * n.T + t;
        const T *q = in.q + r * Dk, *k = in.k + r * Dk, *v = in.v + r * Dv, *dO = dout + r * Dv, b = in.beta[r];
        const T *Sp = states.data() + t * N, *St = Sp + N;
        T *dq = d.dq + r * Dk, *dk = d.dk + r * Dk, *dv = d.dv + r * Dv;
        for (int64_t c = 0; c < Dk; ++c)  // o_t = q_t S_t
          for (int64_t j = 0; j < Dv; ++j) {
            dS[size_t(c * Dv + j)] += q[c] * dO[j];
            dq[c] += St[c * Dv + j] * dO[j];
          }
        for (int64_t j = 0; j < Dv; ++j) {  // u = v - k S_{t-1}, kdS = k dS
          u[size_t(j)] = v[j];
          kdS[size_t(j)] = 0;
        }
        for (int64_t c = 0; c < Dk; ++c)
          for (int64_t j = 0; j < Dv; ++j) {
            u[size_t(j)] -= k[c] * Sp[c * Dv + j];
            kdS[size_t(j)] += k[c] * dS[size_t(c * Dv + j)];
          }
        T db = 0;
        for (int64_t j = 0; j < Dv; ++j) {
          dv[j] += b * kdS[size_t(j)];
          db += kdS[size_t(j)] * u[size_t(j)];
        }
        d.dbeta[r] = db;
        for (int64_t c = 0; c < Dk; ++c) {
          T acc = 0;
          for (int64_t j = 0; j < Dv; ++j)
            acc += u[size_t(j)] * dS[size_t(c * Dv + j)] - kdS[size_t(j)] * Sp[c * Dv + j];
          dk[c] += b * acc;
          for (int64_t j = 0; j < Dv; ++j) dS[size_t(c * Dv + j)] -= b * k[c] * kdS[size_t(j)];
        }
      }
      if (d.dh0) std::copy(dS.begin(), dS.end(), d.dh0 + i * N);
    }
  });
}

template <class T>
void delta_rule_chunked_backward(const DeltaGrads<T>& d, const T* dout, const T* dstate, const DeltaInputs<T>& in,
                                 const DeltaSizes& n, int64_t chunk, const T* starts) {
  check_sizes(n, chunk, "delta_rule_chunked_backward");
  const int64_t Dk = n.Dk, Dv = n.Dv, N = Dk * Dv, C = std::min(chunk, std::max<int64_t>(n.T, 1));
  const int64_t nc = (n.T + C - 1) / C;
  parallel_for(n.B * n.H, n.T * (C * (C + Dk + Dv) + N) * 10, [&](int64_t i0, int64_t i1) {
    Chunk<T> w(C, Dk, Dv);
    std::vector<T> sweep(starts ? 0 : size_t((nc + 1) * N)), dS(static_cast<size_t>(N)), E(static_cast<size_t>(C * Dv));
    for (int64_t i = i0; i < i1; ++i) {
      const T* states = starts ? starts + i * (nc + 1) * N : sweep.data();
      if (!starts) {
        start_state(sweep.data(), in, n, i);
        for (int64_t c = 0; c < nc; ++c) {  // the chunk start states, by the forward's own sweep
          const int64_t t0 = c * C, L = std::min(C, n.T - t0), r = i * n.T + t0;
          const T *S0 = sweep.data() + c * N, *k = in.k + r * Dk;
          T* S1 = sweep.data() + (c + 1) * N;
          w.prepare(in.q + r * Dk, k, in.v + r * Dv, in.beta + r, S0, L);
          std::copy(S0, S0 + N, S1);
          gemm_rows<T>(S1, Dv, k, Dk, true, w.U.data(), Dv, false, Dk, Dv, L, 1, 1);
        }
      }
      if (dstate)
        std::copy(dstate + i * N, dstate + (i + 1) * N, dS.begin());
      else
        std::fill(dS.begin(), dS.end(), T(0));
      for (int64_t c = nc - 1; c >= 0; --c) {
        const int64_t t0 = c * C, L = std::min(C, n.T - t0), r = i * n.T + t0;
        const T *S0 = states + c * N, *q = in.q + r * Dk, *k = in.k + r * Dk, *beta = in.beta + r;
        const T* dO = dout + r * Dv;
        T *dq = d.dq + r * Dk, *dk = d.dk + r * Dk, *dv = d.dv + r * Dv, *db = d.dbeta + r;
        w.prepare(q, k, in.v + r * Dv, beta, S0, L);
        // dU = P^T dO + K dS_L
        gemm_rows<T>(w.dU.data(), Dv, w.P.data(), C, true, dO, Dv, false, L, Dv, L, 1, 0);
        gemm_rows<T>(w.dU.data(), Dv, k, Dk, false, dS.data(), Dv, false, L, Dv, Dk, 1, 1);
        // dP = dO U^T ⊙ M: dQ = dP K + dO S_0^T, dK = dP^T Q + U dS_L^T (the first products write)
        gemm_rows<T>(w.dP.data(), C, dO, Dv, false, w.U.data(), Dv, true, L, L, Dv, 1, 0);
        for (int64_t a = 0; a < L; ++a) std::fill(w.dP.data() + a * C + a + 1, w.dP.data() + a * C + L, T(0));
        gemm_rows<T>(dq, Dk, w.dP.data(), C, false, k, Dk, false, L, Dk, L, 1, 0);
        gemm_rows<T>(dq, Dk, dO, Dv, false, S0, Dv, true, L, Dk, Dv, 1, 1);
        gemm_rows<T>(dk, Dk, w.dP.data(), C, true, q, Dk, false, L, Dk, L, 1, 0);
        gemm_rows<T>(dk, Dk, w.U.data(), Dv, false, dS.data(), Dv, true, L, Dk, Dv, 1, 1);
        // dR = Tm^T dU; dA = -(dR U^T), strictly lower, into dP scaled by beta (D = diag(beta) dA)
        gemm_rows<T>(w.dR.data(), Dv, w.Tm.data(), C, true, w.dU.data(), Dv, false, L, Dv, L, 1, 0);
        gemm_rows<T>(w.dP.data(), C, w.dR.data(), Dv, false, w.U.data(), Dv, true, L, L, Dv, -1, 0);
        for (int64_t a = 0; a < L; ++a) {
          T* row = w.dP.data() + a * C;
          std::fill(row + a, row + L, T(0));
          T acc = 0;
          for (int64_t b = 0; b < a; ++b) acc += row[b] * w.G[size_t(a * C + b)];
          db[a] = acc;
          for (int64_t b = 0; b < a; ++b) row[b] *= beta[a];
        }
        gemm_rows<T>(dk, Dk, w.dP.data(), C, false, k, Dk, false, L, Dk, L, 1, 1);  // + D K
        gemm_rows<T>(dk, Dk, w.dP.data(), C, true, k, Dk, false, L, Dk, L, 1, 1);   // + D^T K
        // R = diag(beta)(V - K S_0): E = diag(beta) dR
        for (int64_t a = 0; a < L; ++a) {
          T acc = 0;
          for (int64_t j = 0; j < Dv; ++j) {
            const T g = w.dR[size_t(a * Dv + j)];
            acc += g * w.Dd[size_t(a * Dv + j)];
            E[size_t(a * Dv + j)] = beta[a] * g;
            dv[a * Dv + j] = beta[a] * g;
          }
          db[a] += acc;
        }
        gemm_rows<T>(dk, Dk, E.data(), Dv, false, S0, Dv, true, L, Dk, Dv, -1, 1);
        // dS_0 = dS_L + Q^T dO - K^T E
        gemm_rows<T>(dS.data(), Dv, q, Dk, true, dO, Dv, false, Dk, Dv, L, 1, 1);
        gemm_rows<T>(dS.data(), Dv, k, Dk, true, E.data(), Dv, false, Dk, Dv, L, -1, 1);
      }
      if (d.dh0) std::copy(dS.begin(), dS.end(), d.dh0 + i * N);
    }
  });
}

int64_t delta_rule_starts_size(const DeltaSizes& n, int64_t chunk) {
  const int64_t C = std::min(chunk, std::max<int64_t>(n.T, 1));
  return n.B * n.H * ((n.T + C - 1) / C + 1) * n.Dk * n.Dv;
}

#define TZ_DELTA_INSTANTIATE(T)                                                                                   \
  template void delta_rule_recurrent<T>(T*, T*, const DeltaInputs<T>&, const DeltaSizes&);                        \
  template void delta_rule_chunked<T>(T*, T*, const DeltaInputs<T>&, const DeltaSizes&, int64_t, T*);             \
  template void delta_rule_recurrent_backward<T>(const DeltaGrads<T>&, const T*, const T*, const DeltaInputs<T>&, \
                                                 const DeltaSizes&);                                              \
  template void delta_rule_chunked_backward<T>(const DeltaGrads<T>&, const T*, const T*, const DeltaInputs<T>&,   \
                                               const DeltaSizes&, int64_t, const T*);
TZ_DELTA_INSTANTIATE(float)
TZ_DELTA_INSTANTIATE(double)
#undef TZ_DELTA_INSTANTIATE

}  // namespace tz::kernels
