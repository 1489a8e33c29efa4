// Cross-entropy of logits against integer targets, fused with log-softmax. Shapes: logits
// and dlogits [N, V] (N rows, V classes / vocabulary), targets [N] (i64), losses and lse [N].
//
//   lse_n    = log sum_v exp(logits[n, v])            (max-subtracted, f64 sum)
//   loss_n   = lse_n - logits[n, target_n]            (= -log softmax(logits_n)[target_n])
//   backward: dlogits[n, v] += scale * (softmax(logits_n)_v - [v == target_n])
// Rows whose target equals ignore_index get loss 0 and no gradient. The kernels trust the
// targets (the tensor layer checks 0 <= target < V first). The mean over counted rows and
// scale = dloss / count live in the tensor layer (core/nn_ops.cpp). T = float or double.
#pragma once

#include <cstdint>

namespace tz::kernels {

template <class T>
void cross_entropy_forward(T* losses, T* lse, const T* logits, const int64_t* targets, int64_t N, int64_t V,
                           int64_t ignore_index);
template <class T>
void cross_entropy_forward_ref(T* losses, T* lse, const T* logits, const int64_t* targets, int64_t N, int64_t V,
                               int64_t ignore_index);
template <class T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int64_t* targets, double scale, int64_t N,
                            int64_t V, int64_t ignore_index);
template <class T>
void cross_entropy_backward_ref(T* dlogits, const T* logits, const T* lse, const int64_t* targets, double scale,
                                int64_t N, int64_t V, int64_t ignore_index);

}  // namespace tz::kernels
