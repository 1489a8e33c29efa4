// Fused optimizer update kernels: one pass over a parameter's contiguous data that updates
// the parameter p and its state (momentum m, second moment v) together, reading the
// gradient g once. The optim/ layer (optim/*.cpp) picks the tensors; these see only raw
// pointers. N = the number of elements. Parameter order: outputs/state (p, m, v), inputs
// (g), size, then the hyper-parameters.
//
// Each fast kernel has a plain reference xxx_ref beside it that writes the paper's
// equations literally, one element at a time; tests compare the two. The fast versions
// precompute the per-step constants, split large N over threads (tz::parallel_for; every
// element is independent, so results do not depend on the thread count) and keep the loop
// body simple enough for the compiler to vectorise (p, m, v, g must not overlap). Adam/AdamW
// in f32 has an explicit AVX2+FMA loop when the library is built for AVX2 (-march=native)
// and tz::simd_enabled(): GCC will not vectorise std::sqrt without -fno-math-errno.
// Arithmetic is in T (f32 stays f32, as PyTorch does); the hyper-parameters arrive as
// double and are rounded to T once.
//
// Instantiated for T = float, double.
#pragma once

#include <cstdint>

namespace tz::kernels {

// ---- SGD with momentum (PyTorch semantics) ---------------------------------------------
//   d  = g + wd * p                         (L2 weight decay, added to the gradient)
//   m  = first ? d : momentum * m + (1 - dampening) * d      (only when momentum != 0)
//   d  = nesterov ? d + momentum * m : m    (only when momentum != 0)
//   p -= lr * d
// m may be null when momentum == 0. `first` is true on the parameter's first update.
template <class T>
void sgd_update(T* p, T* m, const T* g, int64_t N, double lr, double momentum, double dampening, bool nesterov,
                double wd, bool first);
template <class T>
void sgd_update_ref(T* p, T* m, const T* g, int64_t N, double lr, double momentum, double dampening, bool nesterov,
                    double wd, bool first);

// ---- Adam (arXiv:1412.6980), weight decay as L2 into the gradient ------------------------
//   d = g + wd * p
//   m = beta1 * m + (1 - beta1) * d
//   v = beta2 * v + (1 - beta2) * d^2
//   p -= lr * (m / bias_c1) / (sqrt(v / bias_c2) + eps)
// with bias_c1 = 1 - beta1^t, bias_c2 = 1 - beta2^t at step t = 1, 2, ...
template <class T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2, double eps, double wd,
                 double bias_c1, double bias_c2);
template <class T>
void adam_update_ref(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2, double eps,
                     double wd, double bias_c1, double bias_c2);

// ---- AdamW (arXiv:1711.05101): decoupled weight decay -------------------------------------
//   p *= 1 - lr * wd                        (decay first, on the parameter itself)
//   then Adam above with d = g (no L2 term)
template <class T>
void adamw_update(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2, double eps, double wd,
                  double bias_c1, double bias_c2);
template <class T>
void adamw_update_ref(T* p, T* m, T* v, const T* g, int64_t N, double lr, double beta1, double beta2, double eps,
                      double wd, double bias_c1, double bias_c2);

// ---- Lion (arXiv:2302.06675, Algorithm 2) -------------------------------------------------
//   u  = sign(beta1 * m + (1 - beta1) * g)   (sign(0) = 0; NaN stays NaN)
//   p -= lr * (u + wd * p)
//   m  = beta2 * m + (1 - beta2) * g
template <class T>
void lion_update(T* p, T* m, const T* g, int64_t N, double lr, double beta1, double beta2, double wd);
template <class T>
void lion_update_ref(T* p, T* m, const T* g, int64_t N, double lr, double beta1, double beta2, double wd);

// ---- helpers for gradient clipping ---------------------------------------------------------
// sum_i x[i]^2, accumulated in f64 (in a fixed order: the result does not depend on the
// thread count).
template <class T>
double sum_squares(const T* x, int64_t N);
// x[i] *= s (s rounded to T).
template <class T>
void scale_inplace(T* x, int64_t N, double s);

}  // namespace tz::kernels
