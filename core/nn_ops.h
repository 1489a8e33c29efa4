// Tensor-level fused neural-network ops over the last dim (not differentiable; the autograd
// wrappers in autograd/ops_nn.cpp pair each forward with its backward): shape and dtype
// checks, non-contiguous inputs (copied once to contiguous rows), dtype dispatch, then the
// kernels of core/kernels/{softmax,norm,cross_entropy}.h. Shapes: x [..., C] is N rows of
// C; logits [..., V] with targets [...] (i64).
#pragma once

#include <cstdint>

#include "core/random.h"
#include "core/tensor.h"

namespace tz::core {

Tensor softmax(const Tensor& x);
Tensor softmax_backward(const Tensor& g, const Tensor& out);  // out = softmax(x)
Tensor log_softmax(const Tensor& x);
Tensor log_softmax_backward(const Tensor& g, const Tensor& out);  // out = log_softmax(x)

// out, and the per-row statistics the backward needs: mean and rstd of shape [...] (the
// leading dims); rms_norm leaves mean undefined. weight/bias [C] may be undefined.
struct NormForward {
  Tensor out, mean, rstd;
};
struct NormGrads {
  Tensor dx, dweight, dbias;  // undefined where not requested
};
NormForward layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);
NormGrads layer_norm_backward(const Tensor& g, const Tensor& x, const Tensor& weight, const Tensor& mean,
                              const Tensor& rstd, bool need_dx, bool need_dweight, bool need_dbias);
NormForward rms_norm(const Tensor& x, const Tensor& weight, double eps);
NormGrads rms_norm_backward(const Tensor& g, const Tensor& x, const Tensor& weight, const Tensor& rstd, bool need_dx,
                            bool need_dweight);

// Mean over non-ignored rows of -log softmax(logits)[target]. The loss is a 0-d tensor of
// the logits' dtype; lse [N] is saved for the backward. When every target is ignored
// (count = 0) the loss is 0 and the gradient is 0 (PyTorch returns NaN there; 0 keeps a
// fully padded batch from poisoning a training run).
struct CrossEntropyForward {
  Tensor loss, lse;
  int64_t count = 0;
};
CrossEntropyForward cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index);
// g: the loss gradient (one element). Returns dlogits of the logits' shape.
Tensor cross_entropy_backward(const Tensor& g, const Tensor& logits, const Tensor& targets, const Tensor& lse,
                              int64_t ignore_index, int64_t count);

// Inverted dropout: element i (row-major) is kept when uniform(first + i) >= p and then
// scaled by 1/(1-p); `first` is reserved from gen (numel counters), so the mask depends on
// the seed and counter only, never on the thread count. p = 0 or !training: identity
// (out is x itself, gen untouched). p outside [0, 1) throws.
struct DropoutForward {
  Tensor out;
  bool identity = true;
  uint64_t seed = 0, first = 0;
};
DropoutForward dropout(const Tensor& x, double p, bool training, Generator& gen);
// g times the same mask and scale.
Tensor dropout_backward(const Tensor& g, double p, uint64_t seed, uint64_t first);

}  // namespace tz::core
