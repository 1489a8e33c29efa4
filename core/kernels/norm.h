// LayerNorm and RMSNorm over the last dim, forward and backward (llm.c's layernorm_forward /
// layernorm_backward layout). Shapes: inp, out, dout, dinp [N, C] (N rows = product of the
// leading dims, e.g. B*T; C = channels); weight, bias, dweight, dbias [C]; mean, rstd [N].
//
// LayerNorm (Ba et al. 2016, arXiv:1607.06450):
//   mean = sum_c x_c / C,  rstd = 1 / sqrt(sum_c (x_c - mean)^2 / C + eps)   (biased var)
//   xhat = (x - mean) rstd,  y = xhat w + b
//   backward, with dxhat = dy w:
//     dx = rstd (dxhat - mean_c(dxhat) - xhat mean_c(dxhat xhat)),  dw += sum_n dy xhat,
//     db += sum_n dy
// RMSNorm (Zhang & Sennrich 2019, arXiv:1910.07467):
//   rstd = 1 / sqrt(sum_c x_c^2 / C + eps),  xhat = x rstd,  y = xhat w
//   backward: dx = rstd (dxhat - xhat mean_c(dxhat xhat)),  dw += sum_n dy xhat
//
// weight/bias may be nullptr (w = 1, b = 0), and then dweight/dbias must be nullptr too;
// dweight/dbias may also be nullptr when their gradient is not wanted. Backward kernels
// accumulate (+=). Row statistics are computed in f64 (two passes) and stored as T.
// dweight/dbias sum over N in f64, per column block, so the result does not depend on
// the thread count. T = float or double.
#pragma once

#include <cstdint>

namespace tz::kernels {

template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* weight, const T* bias, int64_t N, int64_t C,
                       double eps);
template <class T>
void layernorm_forward_ref(T* out, T* mean, T* rstd, const T* inp, const T* weight, const T* bias, int64_t N, int64_t C,
                           double eps);
template <class T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight, const T* mean,
                        const T* rstd, int64_t N, int64_t C);
template <class T>
void layernorm_backward_ref(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight, const T* mean,
                            const T* rstd, int64_t N, int64_t C);

template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* weight, int64_t N, int64_t C, double eps);
template <class T>
void rmsnorm_forward_ref(T* out, T* rstd, const T* inp, const T* weight, int64_t N, int64_t C, double eps);
template <class T>
void rmsnorm_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd, int64_t N,
                      int64_t C);
template <class T>
void rmsnorm_backward_ref(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd, int64_t N,
                          int64_t C);

}  // namespace tz::kernels
