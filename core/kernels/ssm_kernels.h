// State-space kernels on dense matrices, in f64: the HiPPO matrices, the discretisations, the
// Krylov powering K_l = C Ā^l B̄ (the reference every SSM kernel generator is tested against), a
// Hermitian eigensolver and the normal-plus-low-rank (NPLR) form S4 starts from.
//
// Shape letters: N state size, L kernel length. Matrices are row-major N x N, vectors N.
// Continuous system x'(t) = A x(t) + B u(t), y = C x (sign convention: A is the matrix of the ODE,
// so HiPPO-LegS's A has a negative diagonal).
//
// HiPPO ("HiPPO: Recurrent Memory with Optimal Polynomial Projections", Gu, Dao, Ermon, Rudra, Ré
// 2020, arXiv:2008.07669), each the projection of the history onto N basis functions:
//   LegS (scaled Legendre, the whole history [0, t]):
//     A_nk = -√(2n+1)√(2k+1) (n > k), -(n+1) (n = k), 0 (n < k);   B_n = √(2n+1)
//     (the time-varying memory is c' = (1/t)(A c + B u); S4 uses the same A time-invariantly)
//   LegT (translated Legendre, the window [t-1, t]; the LMU form, window length 1):
//     A_nk = (2n+1) (-1 (n < k), (-1)^{n-k+1} (n >= k));   B_n = (2n+1)(-1)^n
//     (u(t - r) ≈ Σ_n c_n P_n(2r - 1), P_n the Legendre polynomials)
//   FouT (truncated Fourier on the window [t-1, t], "How to Train Your HiPPO", Gu, Johnson,
//     Timalsina, Rudra, Ré 2022, arXiv:2206.12037): basis of the age a = t - s ∈ [0, 1],
//     q_0 = 1, q_{2k-1} = √2 cos 2πka, q_{2k} = √2 sin 2πka. Then
//     c' = J c + q(0) (u(t) - u(t-1)),  J_{2k-1,2k} = -2πk, J_{2k,2k-1} = 2πk,
//     and u(t-1), which the state does not hold, is taken from the reconstruction at the
//     window's edge: the Fourier series of the (periodised) window converges there to the mean
//     of the jump, (u(t) + u(t-1)) / 2 ≈ Σ_n c_n q_n(0). So with e = q(0):
//     A = J - 2 e eᵀ,  B = 2 e.
//
// Discretisation with step Δ:
//   bilinear: Ā = (I - Δ/2 A)^{-1} (I + Δ/2 A),   B̄ = (I - Δ/2 A)^{-1} Δ B
//   ZOH:      Ā = e^{ΔA},  B̄ = A^{-1}(e^{ΔA} - I) B, both read from one exponential of the
//             block matrix [[A, B], [0, 0]] Δ (no inverse of A needed).
//
// NPLR (S4, "Efficiently Modeling Long Sequences with Structured State Spaces", Gu, Goel, Ré
// 2021, arXiv:2111.00396): A + P Pᵀ = S is normal for LegS (P_n = √(n + 1/2): S = -I/2 + a
// skew-symmetric part) and for FouT (P = √2 e: S = J, skew). S = V Λ V* (V unitary), so
//   A = V (Λ - P̃ P̃*) V*,  P̃ = V* P,  B̃ = V* B.
#pragma once

#include <complex>
#include <cstdint>
#include <vector>

namespace tz::kernels {

using cplx = std::complex<double>;

struct DenseSsm {
  int64_t N = 0;
  std::vector<double> A, B;  // [N, N], [N]
};
DenseSsm hippo_legs(int64_t N);
DenseSsm hippo_legt(int64_t N);
DenseSsm hippo_fout(int64_t N);

// Solves M X = R for X (M [N, N], R and X [N, R_cols]) by Gaussian elimination with partial
// pivoting; throws tz::Error on a singular M.
void solve_dense(double* X, const double* M, const double* R, int64_t N, int64_t R_cols);
// e^M by scaling and squaring of a Taylor series (M [N, N]).
void expm_dense(double* E, const double* M, int64_t N);

void discretise_bilinear(double* Ab, double* Bb, const double* A, const double* B, int64_t N, double dt);
void discretise_zoh(double* Ab, double* Bb, const double* A, const double* B, int64_t N, double dt);

// Krylov vectors V [L, N]: V_l = Ā^l B̄ (one matrix-vector product per step).
void krylov_vectors(double* V, const double* Ab, const double* Bb, int64_t N, int64_t L);
// K [L]: K_l = C Ā^l B̄.
void krylov_kernel(double* K, const double* Ab, const double* Bb, const double* C, int64_t N, int64_t L);

// Eigen-decomposition of a Hermitian H [N, N] by cyclic complex Jacobi rotations:
// H = V diag(w) V*, w ascending, V [N, N] unitary (columns the eigenvectors).
void hermitian_eigen(double* w, cplx* V, const cplx* H, int64_t N);

struct Nplr {
  int64_t N = 0;
  std::vector<cplx> lambda, P, B, V;  // Λ [N], P̃ [N], B̃ [N], V [N, N]
};
// The NPLR form of a HiPPO system given its low-rank vector P (A + P Pᵀ normal). Λ's real
// part is the mean of the diagonal of A + P Pᵀ (exact for LegS and FouT, whose normal part is
// a multiple of I plus a skew matrix); throws when A + P Pᵀ is not of that form.
Nplr nplr(const DenseSsm& s, const std::vector<double>& P);
std::vector<double> legs_low_rank(int64_t N);  // P_n = √(n + 1/2)
std::vector<double> fout_low_rank(int64_t N);  // √2 q(0)

// HiPPO-LegS as a time-varying memory (sec. 3 of the HiPPO paper), with A, B of hippo_legs:
// c_k = (I - A/(2k))^{-1} [(I + A/(2k)) c_{k-1} + B u_k / k], k = 1, 2, ... (bilinear, step 1).
// Writes Ā_k [N, N] and B̄_k [N] for k = 1..T (Ab [T, N, N], Bb [T, N]).
void legs_memory_steps(double* Ab, double* Bb, int64_t N, int64_t T);
// Legendre polynomials P_n(x), n < N, at x ∈ [-1, 1] (three-term recurrence).
void legendre(double* p, double x, int64_t N);

}  // namespace tz::kernels
