// The delta rule, forward and backward, in two forms: the fast-weight update of DeltaNet
// ("Linear Transformers Are Secretly Fast Weight Programmers", Schlag, Irie, Schmidhuber 2021,
// arXiv:2102.11174) and its chunkwise training ("Parallelizing Linear Transformers with the
// Delta Rule over Sequence Length", Yang, Wang, Zhang, Shen, Kim 2024, arXiv:2406.06484).
//
// Shape letters (used in every comment of delta_rule*.cpp):
//   B = batch, H = heads, T = time steps, Dk = key/query dim, Dv = value dim,
//   C = chunk size, L = tokens of one chunk (L <= C).
//   q, k [B, H, T, Dk]; v [B, H, T, Dv]; beta [B, H, T]; state S [B, H, Dk, Dv];
//   out o [B, H, T, Dv]. All contiguous.
//
// The state is stored as in core/kernels/linear_attention.h, S [Dk, Dv] read by o_t = q_t S_t
// (the transpose of the paper's S [Dv, Dk] with o_t = S_t q_t). The recurrence (S_0 = h0 or 0):
//   S_t = (I - beta_t k_t^T k_t) S_{t-1} + beta_t k_t^T v_t
//       = S_{t-1} + beta_t k_t^T (v_t - k_t S_{t-1}),        o_t = q_t S_t
// i.e. the value stored under k_t is moved a fraction beta_t from k_t S_{t-1} towards v_t
// (beta_t = 1, |k_t| = 1: replaced). Backward of one step (dS the gradient of S_t):
//   dq_t = dO_t S_t^T,   dS += q_t^T dO_t,   u_t = v_t - k_t S_{t-1},
//   dv_t = beta_t k_t dS,   dbeta_t = k_t dS u_t^T,
//   dk_t = beta_t (u_t dS^T - (k_t dS) S_{t-1}^T),   dS_{t-1} = (I - beta_t k_t^T k_t) dS.
//
// The chunked (WY / UT) form. Within a chunk of L tokens from the state S_0, S_t = S_0 +
// sum_{i<=t} k_i^T u_i with u_i = beta_i (v_i - k_i S_{i-1}); stacking the u_i as U [L, Dv]:
//   (I + A) U = R,   A = strictly lower part of diag(beta) K K^T,   R = diag(beta)(V - K S_0)
//   Tm = (I + A)^-1 (unit lower triangular, by forward substitution), U = Tm R
//     (= Tm diag(beta) V - W S_0 with the WY factor W = Tm diag(beta) K)
//   O = Q S_0 + (Q K^T ⊙ M) U   (M the lower triangle with its diagonal),   S_L = S_0 + K^T U.
// Work O(T C (C + Dk + Dv) + T Dk Dv), memory O(C^2) per head. Backward per chunk, from the
// last, with dO and dS_L (the gradient of the chunk's end state):
//   dU = (Q K^T ⊙ M)^T dO + K dS_L,   dP = dO U^T ⊙ M:   dQ = dP K + dO S_0^T,
//   dK = dP^T Q + U dS_L^T,   dR = Tm^T dU,   dA = -(dR U^T) strictly lower,
//   dK += D K + D^T K with D = diag(beta) dA,  dbeta_i = sum_j dA_ij (K K^T)_ij + dR_i . (V - K S_0)_i,
//   dV = diag(beta) dR,   dK -= diag(beta) dR S_0^T,
//   dS_0 = dS_L + Q^T dO - K^T diag(beta) dR.
// (dA from Tm = (I + A)^-1: dA = -Tm^T dTm Tm^T with dTm = dU R^T, which is -dR U^T.) The
// chunked backward reads the chunk start states the forward kept (`starts`), or recomputes
// them in a forward sweep (T / C states of Dk x Dv); the recurrent backward stores all T
// states of one head (a reference only). Backward kernels write every gradient buffer (no
// need to zero them first); a null dh0 is skipped.
//
// f32 runs the products through kernels::gemm; the B x H heads run in parallel.
#pragma once

#include <cstdint>

namespace tz::kernels {

struct DeltaSizes {
  int64_t B = 0, H = 0, T = 0, Dk = 0, Dv = 0;
};

template <class T>
struct DeltaInputs {
  const T* q = nullptr;
  const T* k = nullptr;
  const T* v = nullptr;
  const T* beta = nullptr;
  const T* h0 = nullptr;  // initial state; null: zeros
};

template <class T>
struct DeltaGrads {
  T* dq = nullptr;
  T* dk = nullptr;
  T* dv = nullptr;
  T* dbeta = nullptr;
  T* dh0 = nullptr;  // null: not wanted
};

// Forward forms: out [B, H, T, Dv] and the final state [B, H, Dk, Dv] are written.
template <class T>
void delta_rule_recurrent(T* out, T* state, const DeltaInputs<T>& in, const DeltaSizes& n);
// The chunked form's optional `starts` [B, H, ceil(T / C) + 1, Dk, Dv] (C = min(chunk, T), at
// least 1): the state at each chunk's start and the final state, written by the forward when
// given and read by the backward instead of a recomputing sweep.
int64_t delta_rule_starts_size(const DeltaSizes& n, int64_t chunk);
template <class T>
void delta_rule_chunked(T* out, T* state, const DeltaInputs<T>& in, const DeltaSizes& n, int64_t chunk,
                        T* starts = nullptr);

// Backward forms: dout [B, H, T, Dv], dstate [B, H, Dk, Dv] (null = 0).
template <class T>
void delta_rule_recurrent_backward(const DeltaGrads<T>& d, const T* dout, const T* dstate, const DeltaInputs<T>& in,
                                   const DeltaSizes& n);
template <class T>
void delta_rule_chunked_backward(const DeltaGrads<T>& d, const T* dout, const T* dstate, const DeltaInputs<T>& in,
                                 const DeltaSizes& n, int64_t chunk, const T* starts = nullptr);

}  // namespace tz::kernels
