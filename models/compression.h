// The compression functions of the Compressive Transformer (Rae et al. 2020, "Compressive
// Transformers for Long-Range Sequence Modelling", arXiv:1911.05507, sec. 3.1-3.2), and its two
// local training losses. Shapes: B batch, T query positions, n old (evicted) memories, C width,
// c = compress_rate, m = ceil(n / c) compressed slots, H heads, G key/value heads, D head size.
//
// f_c maps the n memories a segment evicts to m compressed ones [B, m, C]; slot j reads the
// window of sources j c .. j c + c - 1 (dilated_conv: a wider, dilated one):
//   max:          y_j = max_k  x_{jc+k}                  over the k < c with jc + k < n
//   mean:         y_j = mean_k x_{jc+k}                  (a last partial window pools what it has)
//   conv:         y_j = b + sum_{k<c} W_k x_{jc+k}       W [C, C, c] (W_k = W[:, :, k]), b [C];
//                                                        sources past n are zeros
//   dilated_conv: y_j = b + sum_{k<c} W_k x_{jc+2k}      kernel c, dilation 2, output stride c; x is
//                                                        padded at the end with zeros up to
//                                                        (m - 1) c + 2 (c - 1) + 1 steps
//   most_used:    the m old slots with the largest usage (attention mass received), in time order
//                 (ties: the earlier slot); the paper's "most-used" (its usage: averaged attention)
// The convolutions are composites (strided slices, stack, linear), so autograd needs no new op.
//
// Losses (both local: the main network's activations and weights are detached, so they train
// only the compressor, sec. 3.2):
//   L_ae   = mean (old - g(f_c(old)))^2        g: per slot a linear map C -> c C, cropped to n
//   L_attn = mean (attn(h, old) - attn(h, f_c(old)))^2
//            attn(h, M) = concat_h softmax(q_h k_h^T / sqrt(D)) v_h,  q = h W_q, k = M W_k, v = M W_v
// with the self-attention layer's own q/k/v projections, no mask, no positions and no output
// projection W_o (the loss compares the heads' outputs). f_c itself does not detach its input: the
// caller hands it the evicted memories, which the segment recurrence has already detached.
#pragma once

#include <memory>
#include <string>

#include "core/random.h"
#include "core/tensor.h"
#include "nn/attention/attention.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace tz::models {

inline const nn::Key<std::string> kCompressFn{
    "compress_fn", "conv",
    "how evicted memories are compressed: max, mean, conv (1-D conv, stride c), dilated_conv, most_used"};
inline const nn::Key<int64_t> kCompressRate{"compress_rate", 3, "c: evicted memories per compressed slot"};
inline const nn::Key<double> kCompressAeLoss{"compress_ae_loss", 0.0,
                                             "weight of the auto-encoding loss ||old - g(f_c(old))||^2 (0 = off)"};
inline const nn::Key<double> kCompressAttnLoss{"compress_attn_loss", 1.0,
                                               "weight of the attention-reconstruction loss"};

struct CompressionOptions {
  std::string fn = "conv";   // max, mean, conv, dilated_conv, most_used
  int64_t rate = 3;          // c
  int64_t dim = 0;           // C
  double ae_weight = 0;      // > 0 builds the decoder g of L_ae
  double attn_weight = 1.0;  // weight of L_attn (read here so that the key is checked once)
};

// The four keys above.
std::vector<nn::ConfigKey> compression_keys();
// The four keys above, checked (a known fn, rate >= 1, weights >= 0, dim > 0); errors name the key.
CompressionOptions read_compression(const nn::Config& config, int64_t dim);

// The weight and bias of f_c's convolution: weight [C, C, c] (out, in, tap), bias [C].
class CompressConv : public nn::Module {
 public:
  CompressConv(int64_t dim, int64_t rate, int64_t dilation, Generator& gen);
  // x [B, n, C] -> [B, ceil(n / c), C] (the conv / dilated_conv equations above).
  Tensor forward(const Tensor& x) const;
  std::string describe() const override;
  Tensor weight, bias;
  int64_t dim, rate, dilation;
};

class Compressor : public nn::Module {
 public:
  Compressor(const CompressionOptions& options, Generator& gen);
  // f_c: old [B, n, C] -> [B, ceil(n / c), C]. `usage` [B, n] (most_used only, required then): attention
  // mass each old slot received; most_used keeps the ceil(n/c) most-used slots in their time order.
  Tensor forward(const Tensor& old, const Tensor& usage = Tensor()) const;
  // The validity mask of the old slots [B, n] (i64, 1 = a real memory) -> [B, ceil(n / c)]: a compressed slot is
  // real when any of its sources is (most_used: the kept slots' flags). Not differentiable.
  Tensor compress_mask(const Tensor& valid, const Tensor& usage = Tensor()) const;
  bool needs_usage() const { return options.fn == "most_used"; }
  // L_ae = mean ||old - g(f_c(old))||^2 with the learned decoder g. Only when options.ae_weight > 0.
  // `old` is detached: gradients reach the compressor and g only. `usage` as for forward (most_used).
  Tensor autoencoding_loss(const Tensor& old, const Tensor& usage = Tensor()) const;
  std::string describe() const override;
  int64_t compressed_length(int64_t n) const { return (n + options.rate - 1) / options.rate; }

  CompressionOptions options;
  std::shared_ptr<CompressConv> conv;   // conv, dilated_conv
  std::shared_ptr<nn::Linear> decoder;  // g: C -> c C, when ae_weight > 0

 private:
  // Per batch row, the ceil(n/c) kept slot indices of most_used, ascending.
  std::vector<std::vector<int64_t>> kept_slots(const Tensor& usage, int64_t B, int64_t n) const;
};

// attn(h, M) [B, T, H D] above: `layer`'s content-based multi-head attention of h [B, T, C] over the
// memory M [B, S, C] (q/k/v projections, softmax over all S slots, before W_o), with the layer's
// weights as they are (differentiable). The loss below calls it with detached weights.
Tensor content_attention(const nn::Attention& layer, const Tensor& h, const Tensor& mem);

// L_attn (sec. 3.2): mean over elements of (attn(h, old) - attn(h, compressed))^2 with `layer`'s q/k/v
// projections (a self-attention layer with separate query heads: q_heads = H, k_heads = G). h, old and
// the layer's weights are detached, so the gradient reaches only `compressed` (and so the compressor's
// parameters). h [B, T, C], old [B, n, C], compressed [B, m, C], all in the attention layer's input space.
Tensor attention_reconstruction_loss(const nn::Attention& layer, const Tensor& h, const Tensor& old,
                                     const Tensor& compressed);

}  // namespace tz::models
