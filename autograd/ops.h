// The differentiable ops (the list is autograd/ops.def). Each records itself on the graph
// when grad mode is on and an input requires grad; otherwise it is just the core op.
// Shapes use the letters B (batch), T (time), C (channels), H (heads), D (head size),
// V (vocabulary). Binary ops broadcast like NumPy.
#pragma once

#include <optional>
#include <vector>

#include "autograd/node.h"
#include "core/attention.h"          // AttentionSpec, core::key_padding_mask, core::forgotten_keys_mask
#include "core/attention_partial.h"  // core::AttentionPart
#include "core/delta_rule.h"         // DeltaRuleSpec
#include "core/linear_attention.h"   // LinearAttentionSpec, LinearAttentionForm
#include "core/random.h"
#include "core/scan.h"  // ScanOptions, SelectiveScanOptions
#include "core/tensor.h"
#include "core/ttt.h"  // core::TttLinearInputs

namespace tz {

// ---- views and copies ------------------------------------------------------------------
// (Also available as Tensor methods: x.view(...), x.permute(...), ...)
Tensor cast(const Tensor& x, DType dtype);

// ---- elementwise -----------------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond: any dtype, != 0
Tensor add_scalar(const Tensor& x, double s);
Tensor mul_scalar(const Tensor& x, double s);
Tensor pow_scalar(const Tensor& x, double p);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);  // mask != 0 → value

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor log_sigmoid(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);
Tensor gelu_tanh(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor tril(const Tensor& x, int64_t k = 0);
Tensor triu(const Tensor& x, int64_t k = 0);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);

// ---- reductions --------------------------------------------------------------------------
Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);  // {} = all
Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor var(const Tensor& x, int64_t dim, int64_t correction = 1, bool keepdim = false);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor cumsum(const Tensor& x, int64_t dim);
// Sums `grad` over broadcast dims down to `shape` (the backward of broadcasting).
Tensor sum_to(const Tensor& grad, const Shape& shape);

// ---- matrix products -------------------------------------------------------------------
Tensor matmul(const Tensor& a, const Tensor& b);                                      // [..., M, K] @ [..., K, N]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());  // W: [out, in]

// ---- neural-network ops ------------------------------------------------------------------
Tensor softmax(const Tensor& x);      // over the last dim
Tensor log_softmax(const Tensor& x);  // over the last dim
// alpha-entmax over the last dim (alpha > 1; 2 = sparsemax, 1.5 = entmax15): sparse
// probabilities with exact zeros; -inf scores get 0 (autograd/ops_entmax.cpp).
Tensor entmax(const Tensor& x, double alpha);
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);  // weight optional
// logits [N, V] (or [..., V]), targets i64 [N] (or [...]); mean over non-ignored targets.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);
// q [B, H, T, D], k, v [B, G, S, D] (G divides H: query head h reads group h / (H / G)) →
// [B, H, T, D]; fused and tiled, never stores the T x S probabilities: memory linear in T
// (core/kernels/attention.h). The spec (core/attention.h) adds causal masking, mask terms
// (window, key padding, forgotten keys, ...) and a relative score bias rel_bias
// [H or 1, T + S - 1], differentiable, entry S - 1 + i - j for query i, key j. A query that
// sees no key outputs 0 with zero gradients. The backward keeps spec.mask alive (and with it
// the flags of terms from core::key_padding_mask / forgotten_keys_mask; terms over raw
// pointers need their flags alive until backward).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec);
// The same spec through the plain ops, scores materialised [B, H, T, S] (matmul, the bias
// table gathered by index_select, masked_fill, softmax, matmul; k, v expanded to H heads by
// index_select): the reference of the fused op, and the path for features that need the
// scores.
Tensor attention_composite(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec);
// Plain attention: attention(q, k, v, {.causal, .q_offset, .scale}).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, int64_t q_offset = 0,
                 double scale = 0 /*0 = 1/sqrt(D)*/);
// Fused attention of q over disjoint key parts (core/attention_partial.h: each part its k, v
// and spec), merged exactly by the parts' log-sum-exp: attention over the union of what the
// parts see. Differentiable in q and every part's k, v (and rel_bias).
Tensor attention_merged(const Tensor& q, const std::vector<core::AttentionPart>& parts);
// Linear attention with decays (core/kernels/linear_attention.h): q, k [B, H, T, Dk],
// v [B, H, T, Dv] -> out [B, H, T, Dv] and the final state [B, H, Dk, Dv] (Dv + 1 with
// spec.normalise), both differentiable, as are the spec's log_decay, bonus and h0. The form
// (recurrent, chunked, parallel) chooses the kernel forward and backward alike.
struct LinearAttentionResult {
  Tensor out, state;
};
LinearAttentionResult linear_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const LinearAttentionSpec& spec);
// The same through the plain ops, one token at a time (the reference of the fused op).
LinearAttentionResult linear_attention_composite(const Tensor& q, const Tensor& k, const Tensor& v,
                                                 const LinearAttentionSpec& spec);

// The delta rule (core/kernels/delta_rule.h): q, k [B, H, T, Dk], v [B, H, T, Dv], beta
// [B, H, T] -> out [B, H, T, Dv] and the final state [B, H, Dk, Dv], both differentiable, as
// is spec.h0. spec.form is recurrent or chunked (the WY form).
struct DeltaRuleResult {
  Tensor out, state;
};
DeltaRuleResult delta_rule(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& beta,
                           const DeltaRuleSpec& spec);
// The same through the plain ops, one token at a time (the reference of the fused op).
DeltaRuleResult delta_rule_composite(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& beta,
                                     const DeltaRuleSpec& spec);

// TTT-Linear's inner loop in the dual form, fused (core/kernels/ttt.h): q, k, v [B, H, T, D],
// eta [B, H, T, 1], W0 [1 or B, H, D, D], b0 [1 or B, H, 1, D], ln_w, ln_b [1, H, 1, D]; the
// sequence starts at a mini-batch boundary. Every result is differentiable. The reference is
// nn/linear_rnn/ttt_inner.h's ttt_segment, built from the plain ops.
struct TttLinearResult {
  Tensor z, W, b, loss;  // [B, H, T, D], [B, H, D, D], [B, H, 1, D], [B, H, T]
};
TttLinearResult ttt_linear(const core::TttLinearInputs& in);

// ---- indexing and joining ---------------------------------------------------------------
Tensor embedding(const Tensor& weight, const Tensor& ids);  // [V, C], ids [...] → [..., C]
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim);  // views
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);
// x [B, T, C], weight [C, K]: y[b,t,c] = sum_k weight[c,k] * x[b, t-K+1+k, c] (zero padded).
Tensor conv1d_causal(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// The same conv continuing a sequence: `state` [B, K - 1, C] holds the K - 1 inputs before x
// (zeros at the start) and is replaced by the last K - 1 inputs of [state, x], so that
// decoding one step at a time, or any split into chunks, gives conv1d_causal of the whole.
Tensor conv1d_causal_continue(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& state);

// ---- first-order linear recurrences (autograd/ops_scan.cpp; kernels in core/kernels/scan.h)
// a, b [B, T, D] (complex: [B, T, D, 2]), h0 [B, D] ([B, D, 2]) or undefined (zeros) ->
// h [B, T, D]: h_t = a_t h_{t-1} + b_t; the final state is h.select(1, T - 1).
Tensor scan(const Tensor& a, const Tensor& b, const Tensor& h0 = Tensor(), const ScanOptions& options = {});
// The same recurrence as a loop of plain ops over T (the reference).
Tensor scan_composite(const Tensor& a, const Tensor& b, const Tensor& h0 = Tensor(), bool complex = false);
// Mamba's selective scan: u, delta, z [B, T, D]; A [D, N]; Bm, Cm [B, T, N]; Dskip [D];
// h0 [B, D, N]; z, Dskip, h0 may be undefined. y [B, T, D], state [B, D, N] (views of one
// node's output). The formulas are in core/kernels/scan.h.
struct SelectiveScanResult {
  Tensor y, state;
};
SelectiveScanResult selective_scan(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm,
                                   const Tensor& Cm, const Tensor& Dskip = Tensor(), const Tensor& z = Tensor(),
                                   const Tensor& h0 = Tensor(), const SelectiveScanOptions& options = {});
// The same through plain ops, Abar [B, T, D, N] materialised and a loop over T (as the
// paper's selective_scan_ref): the reference.
SelectiveScanResult selective_scan_composite(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& Bm,
                                             const Tensor& Cm, const Tensor& Dskip = Tensor(),
                                             const Tensor& z = Tensor(), const Tensor& h0 = Tensor());

// ---- not differentiable: indices and comparisons -----------------------------------------
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
struct ValuesIndices {
  Tensor values;
  Tensor indices;
};
ValuesIndices max_with_indices(const Tensor& x, int64_t dim, bool keepdim = false);
ValuesIndices min_with_indices(const Tensor& x, int64_t dim, bool keepdim = false);
ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim = -1,
                   bool largest = true);                                         // values differentiable (via gather)
ValuesIndices sort(const Tensor& x, int64_t dim = -1, bool descending = false);  // values differentiable (via gather)
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);

}  // namespace tz
