// Tensor-level fused attention: see attention.h.
#include "core/attention.h"

#include <cmath>

#include "core/copy.h"
#include "core/creation.h"
#include "core/kernels/attention.h"
#include "core/reduce.h"

namespace tz::core {

namespace {
void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec) {
  TZ_CHECK(q.defined() && k.defined() && v.defined(), "attention: undefined q, k or v");
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
           "attention: expected q [B, H, T, D] and "
           "k, v [B, G, S, D], got q ",
           q.shape(), ", k ", k.shape(), ", v ", v.shape());
  TZ_CHECK(k.shape() == v.shape() && q.size(0) == k.size(0) && q.size(3) == k.size(3) && k.size(1) > 0 &&
               k.size(1) <= q.size(1) && q.size(1) % k.size(1) == 0,
           "attention: shape mismatch, q ", q.shape(), " k ", k.shape(), " v ", v.shape(),
           " (expected q [B, H, T, D], k and v [B, G, S, D] with G dividing H)");
  TZ_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), "attention: dtypes differ, q ", dtype_name(q.dtype()),
           " k ", dtype_name(k.dtype()), " v ", dtype_name(v.dtype()));
  TZ_CHECK(q.size(3) > 0, "attention: head dim D must be > 0, got q ", q.shape());
  TZ_CHECK(!spec.causal || spec.q_offset >= 0, "attention: q_offset must be >= 0 when causal, got ", spec.q_offset);
  if (spec.rel_bias.defined()) {
    const Tensor& r = spec.rel_bias;
    const int64_t H = q.size(1), T = q.size(2), S = k.size(2);
    TZ_CHECK(r.dim() == 2 && (r.size(0) == H || r.size(0) == 1) && r.size(1) == T + S - 1,
             "attention: rel_bias must be [H, T + S - 1] = [", H, ", ", T + S - 1, "] (or [1, ", T + S - 1, "]), got ",
             r.shape());
    TZ_CHECK(r.dtype() == q.dtype(), "attention: rel_bias is ", dtype_name(r.dtype()), ", q is ",
             dtype_name(q.dtype()));
  }
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), S = k.size(2);
  auto same_dtype = [&](const Tensor& t, const char* name) {
    TZ_CHECK(t.dtype() == q.dtype(), "attention: ", name, " is ", dtype_name(t.dtype()), ", q is ",
             dtype_name(q.dtype()));
  };
  TZ_CHECK(spec.rel_q.defined() == spec.rel_k.defined(), "attention: rel_q and rel_k come together");
  if (spec.rel_q.defined()) {
    const Tensor &a = spec.rel_q, &r = spec.rel_k;
    TZ_CHECK(a.dim() == 4 && a.size(0) == B && a.size(1) == H && a.size(2) == T && a.size(3) > 0 && r.dim() == 3 &&
                 r.size(0) == H && r.size(1) == T + S - 1 && r.size(2) == a.size(3),
             "attention: relative keys need rel_q [B, H, T, Dr] = [", B, ", ", H, ", ", T,
             ", Dr] and rel_k [H, T + S - 1, Dr] = [", H, ", ", T + S - 1, ", Dr], got ", a.shape(), " and ",
             r.shape());
    same_dtype(a, "rel_q");
    same_dtype(r, "rel_k");
  }
  TZ_CHECK(spec.pair_q.defined() == spec.pair_k.defined(), "attention: pair_q and pair_k come together");
  if (spec.pair_q.defined()) {
    const Tensor &c = spec.pair_q, &e = spec.pair_k;
    TZ_CHECK(c.dim() == 4 && e.dim() == 4 && (c.size(0) == B || c.size(0) == 1) && (e.size(0) == B || e.size(0) == 1) &&
                 c.size(1) == H && e.size(1) == H && c.size(2) == T && e.size(2) == S && c.size(3) > 0 &&
                 e.size(3) == c.size(3),
             "attention: the pair product needs pair_q [B or 1, H, T, Dp] and pair_k [B or 1, H, S, Dp] with H = ", H,
             ", T = ", T, ", S = ", S, ", got ", c.shape(), " and ", e.shape());
    same_dtype(c, "pair_q");
    same_dtype(e, "pair_k");
  }
  TZ_CHECK(spec.topk >= 0, "attention: topk must be >= 0, got ", spec.topk);
  if (spec.topk_threshold.defined())
    TZ_CHECK(spec.topk_threshold.shape() == Shape({B, H, T}) && spec.topk_threshold.dtype() == q.dtype(),
             "attention: topk_threshold must be [B, H, T] = [", B, ", ", H, ", ", T, "] of q's dtype, got ",
             spec.topk_threshold.shape());
}

// The tensor itself when its last dim is contiguous (rows readable in place), else a copy.
Tensor rows_view(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype && (t.stride(3) == 1 || t.size(3) == 1)) return t;
  return contiguous_as(t, dtype);
}

template <class T>
kernels::AttnRows<T> rows_of(const Tensor& t) {
  return {static_cast<T*>(t.raw_data()), t.stride(0), t.stride(1), t.stride(2)};
}

// A [B, H, N, D] tensor stored as [B, N, H, D] (zeros when `zero`).
Tensor head_interleaved(int64_t B, int64_t H, int64_t N, int64_t D, DType dtype, bool zero) {
  Tensor base = zero ? zeros({B, N, H, D}, dtype) : empty({B, N, H, D}, dtype);
  return as_strided(base, {B, H, N, D}, {N * H * D, D, H * D, 1}, 0);
}

kernels::AttnSizes sizes_of(const Tensor& q, const Tensor& k, const AttentionSpec& spec) {
  const int64_t D = q.size(3);
  return kernels::AttnSizes{.B = q.size(0),
                            .H = q.size(1),
                            .T = q.size(2),
                            .S = k.size(2),
                            .D = D,
                            .q_offset = spec.q_offset,
                            .causal = spec.causal,
                            .scale = spec.scale == 0 ? 1.0 / std::sqrt(double(D)) : spec.scale,
                            .G = k.size(1),
                            .mask = spec.mask.get(),
                            .topk = spec.topk};
}

// The bias table as the kernels read it: contiguous rows of R = T + S - 1, distance 0 at
// S - 1 - q_offset; one row shared by every head when rel_bias is [1, R] (sh = 0). The
// gradient buffer (if any) has the same layout.
template <class T>
kernels::RelativeBias<T> bias_of(const Tensor& table, const kernels::AttnSizes& n, const Tensor& grad) {
  const int64_t R = table.size(1);
  return {.table = static_cast<const T*>(table.raw_data()),
          .sh = table.size(0) == 1 ? 0 : R,
          .R = R,
          .zero = n.S - 1 - n.q_offset,
          .grad = grad.defined() ? static_cast<T*>(grad.raw_data()) : nullptr};
}

// Rows of a [Bx, H, N, W] operand read by B batch rows: sb = 0 when Bx = 1 (shared).
template <class T>
kernels::AttnRows<const T> shared_rows(const Tensor& t) {
  return {static_cast<const T*>(t.raw_data()), t.size(0) == 1 ? 0 : t.stride(0), t.stride(1), t.stride(2)};
}

// The score terms' operands as the kernels read them (rows with a contiguous last dim; the
// relative keys [H, R, Dr] as one table for the batch), and their gradient buffers: rows per
// (b, h), [B, H, N, W] zeros, summed to the operand's shape by grads_to_shape.
struct TermTensors {
  Tensor rel_q, rel_k, pair_q, pair_k;      // row views
  Tensor drel_q, drel_k, dpair_q, dpair_k;  // [B, H, N, W] gradient buffers (backward)
  Tensor threshold;                         // [B, H, T], with top-k
  bool any() const { return rel_q.defined() || pair_q.defined() || threshold.defined(); }
};

TermTensors term_tensors(const AttentionSpec& spec, const kernels::AttnSizes& n, DType dt, bool grads) {
  TermTensors t;
  auto rows = [dt](const Tensor& x) { return x.dtype() == dt && x.stride(-1) == 1 ? x : contiguous_as(x, dt); };
  if (spec.rel_q.defined()) {
    t.rel_q = rows_view(spec.rel_q, dt);
    t.rel_k = rows(spec.rel_k).unsqueeze(0);  // [1, H, R, Dr]
    if (grads) {
      t.drel_q = zeros(spec.rel_q.shape(), dt);
      t.drel_k = zeros({n.B, n.H, spec.rel_k.size(1), spec.rel_k.size(2)}, dt);
    }
  }
  if (spec.pair_q.defined()) {
    t.pair_q = rows_view(spec.pair_q, dt);
    t.pair_k = rows_view(spec.pair_k, dt);
    if (grads) {
      t.dpair_q = zeros({n.B, n.H, n.T, spec.pair_q.size(3)}, dt);
      t.dpair_k = zeros({n.B, n.H, n.S, spec.pair_k.size(3)}, dt);
    }
  }
  return t;
}

template <class T>
kernels::ScoreTerms<T> terms_of(const TermTensors& t, const AttentionSpec& spec, const kernels::AttnSizes& n) {
  kernels::ScoreTerms<T> s;
  auto grad_rows = [](const Tensor& g) { return g.defined() ? rows_of<T>(g) : kernels::AttnRows<T>{}; };
  if (t.rel_q.defined()) {
    s.rel_q = rows_of<const T>(t.rel_q);
    s.rel_k = shared_rows<T>(t.rel_k);
    s.Dr = t.rel_q.size(3);
    s.R = t.rel_k.size(2);
    s.zero = n.S - 1 - n.q_offset;
    s.drel_q = grad_rows(t.drel_q);
    s.drel_k = grad_rows(t.drel_k);
  }
  if (t.pair_q.defined()) {
    s.pair_q = shared_rows<T>(t.pair_q);
    s.pair_k = shared_rows<T>(t.pair_k);
    s.Dp = t.pair_q.size(3);
    s.pair_scale = spec.pair_scale;
    s.dpair_q = grad_rows(t.dpair_q);
    s.dpair_k = grad_rows(t.dpair_k);
  }
  if (t.threshold.defined()) s.threshold = static_cast<T*>(t.threshold.raw_data());
  return s;
}

// The spec of plain attention (no mask terms, no bias).
AttentionSpec plain_spec(bool causal, int64_t q_offset, double scale) {
  return AttentionSpec{.causal = causal, .q_offset = q_offset, .scale = scale};
}

// Mask terms that own their flags (a private contiguous i64 copy).
Tensor own_flags(const Tensor& f, const char* what) {
  TZ_CHECK(f.defined() && f.dim() == 2, what, ": expected flags [B, S], got ", f.defined() ? f.shape() : Shape{});
  Tensor c = f.is_contiguous() && f.dtype() == DType::i64 ? clone(f) : contiguous_as(f, DType::i64);
  return c.detach();
}
struct OwnedKeyPadding : kernels::KeyPaddingMask {
  explicit OwnedKeyPadding(const Tensor& f) : KeyPaddingMask(f.data<int64_t>(), f.size(0), f.size(1)), flags(f) {}
  Tensor flags;
};
struct OwnedForgottenKeys : kernels::ForgottenKeysMask {
  explicit OwnedForgottenKeys(const Tensor& f) : ForgottenKeysMask(f.data<int64_t>(), f.size(0), f.size(1)), flags(f) {}
  Tensor flags;
};
}  // namespace

AttentionForward attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec,
                           bool reference) {
  check_inputs(q, k, v, spec);
  TZ_CHECK(k.size(2) > 0 || q.size(2) == 0, "attention: no keys (S = 0) for ", q.size(2), " queries");
  const kernels::AttnSizes n = sizes_of(q, k, spec);
  Tensor qr = rows_view(q, q.dtype()), kr = rows_view(k, q.dtype()), vr = rows_view(v, q.dtype());
  Tensor table = spec.rel_bias.defined() ? contiguous(spec.rel_bias) : Tensor();
  Tensor out = head_interleaved(n.B, n.H, n.T, n.D, q.dtype(), false);
  Tensor lse = empty({n.B, n.H, n.T}, q.dtype());
  TermTensors tt = term_tensors(spec, n, q.dtype(), false);
  // Top-k: thresholds only when it can hide anything (k < S); otherwise attention is dense.
  if (n.topk > 0 && n.topk < n.S) tt.threshold = empty({n.B, n.H, n.T}, q.dtype());
  TZ_DISPATCH_FLOAT(q.dtype(), "attention", [&]<class T>() {
    if (q.numel() == 0) return;
    auto fwd = reference ? &kernels::attention_forward_ref<T> : &kernels::attention_forward<T>;
    kernels::RelativeBias<T> bias{};
    if (table.defined()) bias = bias_of<T>(table, n, Tensor());
    const kernels::ScoreTerms<T> terms = terms_of<T>(tt, spec, n);
    fwd(rows_of<T>(out), static_cast<T*>(lse.raw_data()), rows_of<const T>(qr), rows_of<const T>(kr),
        rows_of<const T>(vr), n, table.defined() ? &bias : nullptr, tt.any() ? &terms : nullptr);
  });
  return {out, lse, tt.threshold};
}

AttentionGrads attention_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, const AttentionSpec& spec, bool reference) {
  check_inputs(q, k, v, spec);
  TZ_CHECK(g.shape() == q.shape() && out.shape() == q.shape(), "attention backward: gradient ", g.shape(),
           " and output ", out.shape(), " must match q ", q.shape());
  TZ_CHECK(lse.shape() == Shape({q.size(0), q.size(1), q.size(2)}) && lse.dtype() == q.dtype(),
           "attention backward: lse ", lse.shape(), " does not match q ", q.shape());
  const kernels::AttnSizes n = sizes_of(q, k, spec);
  const DType dt = q.dtype();
  Tensor qr = rows_view(q, dt), kr = rows_view(k, dt), vr = rows_view(v, dt);
  Tensor gr = rows_view(g, dt), outr = rows_view(out, dt), lser = contiguous(lse);
  Tensor table = spec.rel_bias.defined() ? contiguous(spec.rel_bias) : Tensor();
  // Gradients head by head ([B, H, N, D]): the kernel adds into a tile's rows again and again,
  // and rows H D floats apart (the output's layout) would share a few L1 sets.
  AttentionGrads r{zeros({n.B, n.H, n.T, n.D}, dt), zeros({n.B, n.G, n.S, n.D}, dt), zeros({n.B, n.G, n.S, n.D}, dt),
                   table.defined() ? zeros(table.shape(), dt) : Tensor()};
  TermTensors tt = term_tensors(spec, n, dt, true);
  if (n.topk > 0 && n.topk < n.S && !reference)
    tt.threshold = spec.topk_threshold.defined() ? contiguous(spec.topk_threshold) : empty({n.B, n.H, n.T}, dt);
  TZ_DISPATCH_FLOAT(dt, "attention backward", [&]<class T>() {
    if (q.numel() == 0 || k.numel() == 0) return;
    auto bwd = reference ? &kernels::attention_backward_ref<T> : &kernels::attention_backward<T>;
    kernels::RelativeBias<T> bias{};
    if (table.defined()) bias = bias_of<T>(table, n, r.drel_bias);
    const kernels::ScoreTerms<T> terms = terms_of<T>(tt, spec, n);
    if (tt.threshold.defined() && !spec.topk_threshold.defined())  // not handed on: find them again
      kernels::attention_topk_threshold<T>(terms.threshold, rows_of<const T>(qr), rows_of<const T>(kr), n,
                                           table.defined() ? &bias : nullptr, &terms);
    bwd(rows_of<T>(r.dq), rows_of<T>(r.dk), rows_of<T>(r.dv), rows_of<const T>(outr),
        static_cast<const T*>(lser.raw_data()), rows_of<const T>(gr), rows_of<const T>(qr), rows_of<const T>(kr),
        rows_of<const T>(vr), n, table.defined() ? &bias : nullptr, tt.any() ? &terms : nullptr);
  });
  // The gradients in the operands' shapes: the relative keys' and a shared pair operand's
  // rows were per batch row.
  if (tt.drel_q.defined()) {
    r.drel_q = tt.drel_q;
    r.drel_k = core::sum_to(tt.drel_k, {1, n.H, tt.drel_k.size(2), tt.drel_k.size(3)}).reshape(spec.rel_k.shape());
  }
  if (tt.dpair_q.defined()) {
    r.dpair_q = core::sum_to(tt.dpair_q, spec.pair_q.shape());
    r.dpair_k = core::sum_to(tt.dpair_k, spec.pair_k.shape());
  }
  return r;
}

AttentionForward attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, int64_t q_offset,
                           double scale, bool reference) {
  return attention(q, k, v, plain_spec(causal, q_offset, scale), reference);
}

AttentionGrads attention_backward(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, bool causal, int64_t q_offset, double scale, bool reference) {
  return attention_backward(g, q, k, v, out, lse, plain_spec(causal, q_offset, scale), reference);
}

std::shared_ptr<const kernels::MaskTerm> key_padding_mask(const Tensor& keep) {
  return std::make_shared<OwnedKeyPadding>(own_flags(keep, "key_padding_mask"));
}

std::shared_ptr<const kernels::MaskTerm> forgotten_keys_mask(const Tensor& forgotten) {
  return std::make_shared<OwnedForgottenKeys>(own_flags(forgotten, "forgotten_keys_mask"));
}

}  // namespace tz::core
