// Tensor-level matrix products: see linalg.h. Shape letters: M, N, K as in
// core/kernels/gemm.h; "batch" = the broadcast leading dims.
//
// How an operand reaches GEMM without a copy: its last two dims [R, C] with strides
// (sr, sc) are either row-major (sc == 1, leading dimension sr) or the transpose of a
// row-major matrix (sr == 1, leading dimension sc) - e.g. x.t() or k.transpose(-1, -2).
// Anything else (stride-0 expanded rows, every-other-column slices) is copied once.
// Batch dims may have any strides, including 0 for broadcast: each batch's matrix is
// found by its own offset, so broadcasting a weight over a batch never copies it.
#include "core/linalg.h"

#include <algorithm>
#include <vector>

#include "core/copy.h"
#include "core/kernels/gemm.h"
#include "core/parallel.h"

namespace tz::core {

namespace {

// One operand as GEMM sees it: matrix [R, C] per batch entry, strides (sr, sc), plus the
// strides of its batch dims broadcast to the output's batch shape (0 where broadcast).
struct Operand {
  Tensor t;  // keeps the storage (and a possible contiguous copy) alive
  int64_t R = 0, C = 0, sr = 0, sc = 0;
  Shape batch_shape, batch_strides;
};

// Builds an operand from a tensor with >= 1 dims. `vec_as_row`: a 1-D tensor is [1, K]
// (lhs) or, when false, [K, 1] (rhs).
Operand make_operand(const Tensor& t, bool vec_as_row) {
  Operand o;
  o.t = t;
  if (t.dim() == 1) {
    const int64_t n = t.size(0), s = t.stride(0);
    if (vec_as_row) {
      o.R = 1;
      o.C = n;
      o.sr = n * s;
      o.sc = s;
    } else {
      o.R = n;
      o.C = 1;
      o.sr = s;
      o.sc = 1;
    }
    return o;
  }
  const int64_t d = t.dim();
  o.R = t.size(d - 2);
  o.C = t.size(d - 1);
  o.sr = t.stride(d - 2);
  o.sc = t.stride(d - 1);
  o.batch_shape.assign(t.shape().begin(), t.shape().end() - 2);
  o.batch_strides.assign(t.strides().begin(), t.strides().end() - 2);
  return o;
}

// How the [R, C] matrix of an operand is passed to GEMM, if it can be without a copy.
struct MatLayout {
  bool ok = false;
  bool trans = false;  // stored as the row-major [C, R] transpose
  int64_t ld = 0;
};
MatLayout mat_layout(int64_t R, int64_t C, int64_t sr, int64_t sc) {
  // Size-1 dims have meaningless strides, so they never block a layout.
  if ((C <= 1 || sc == 1) && (R <= 1 || sr >= std::max<int64_t>(C, 1)))
    return {true, false, R <= 1 ? std::max<int64_t>(C, 1) : sr};
  if ((R <= 1 || sr == 1) && (C <= 1 || sc >= std::max<int64_t>(R, 1)))
    return {true, true, C <= 1 ? std::max<int64_t>(R, 1) : sc};
  return {};
}

// The layout of an operand, copying it to contiguous storage first when needed.
MatLayout layout_or_copy(Operand& o, bool vec_as_row) {
  MatLayout L = mat_layout(o.R, o.C, o.sr, o.sc);
  if (L.ok) return L;
  o = make_operand(contiguous(o.t), vec_as_row);
  L = mat_layout(o.R, o.C, o.sr, o.sc);
  return L;  // a contiguous matrix is always row-major
}

// Element offset of every batch entry of an operand, for the output batch shape `out`.
std::vector<int64_t> batch_offsets(const Operand& o, const Shape& out) {
  const int64_t nb = int64_t(out.size()), lead = nb - int64_t(o.batch_shape.size());
  Shape st(nb, 0);
  for (int64_t d = lead; d < nb; ++d) st[d] = o.batch_shape[d - lead] == 1 ? 0 : o.batch_strides[d - lead];
  std::vector<int64_t> offs(size_t(shape_numel(out)));
  for (size_t i = 0; i < offs.size(); ++i) {
    int64_t rem = int64_t(i), off = 0;
    for (int64_t d = nb - 1; d >= 0; --d) {
      off += (rem % out[d]) * st[d];
      rem /= out[d];
    }
    offs[i] = off;
  }
  return offs;
}

bool batch_dims_broadcast(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1) return false;
  }
  return true;
}

// A batched product below this many flops per entry runs its batch entries in parallel
// (each GEMM serial); above it, the entries run one after the other, each GEMM threaded.
constexpr int64_t kParallelBatchFlops = int64_t(1) << 22;

// out = a @ b (+ bias broadcast over rows when given). `op` names the caller in errors.
Tensor matmul_impl(const Tensor& a_in, const Tensor& b_in, const Tensor& bias, const char* op) {
  TZ_CHECK(a_in.defined() && b_in.defined(), op, ": undefined operand");
  TZ_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, op, ": both operands need at least 1 dim, got lhs ", a_in.shape(),
           " vs rhs ", b_in.shape());
  TZ_CHECK(is_floating(a_in.dtype()) && is_floating(b_in.dtype()), op,
           ": expected floating dtypes (f32 or f64), got lhs ", dtype_name(a_in.dtype()), " vs rhs ",
           dtype_name(b_in.dtype()));
  TZ_CHECK(a_in.dtype() == b_in.dtype(), op, ": dtype mismatch, lhs ", dtype_name(a_in.dtype()), " vs rhs ",
           dtype_name(b_in.dtype()));

  Operand A = make_operand(a_in, true), B = make_operand(b_in, false);
  TZ_CHECK(A.C == B.R, op, ": shape mismatch, lhs ", a_in.shape(), " vs rhs ", b_in.shape());
  TZ_CHECK(batch_dims_broadcast(A.batch_shape, B.batch_shape), op, ": batch dims do not broadcast, lhs ", a_in.shape(),
           " vs rhs ", b_in.shape());
  const Shape batch = broadcast_shapes(A.batch_shape, B.batch_shape, op);
  const int64_t M = A.R, K = A.C, N = B.C;

  // Output shape: batch + [M, N], without the dims that 1-D operands added.
  Shape out_shape = batch;
  if (a_in.dim() > 1) out_shape.push_back(M);
  if (b_in.dim() > 1) out_shape.push_back(N);
  Tensor out = empty(out_shape, a_in.dtype());
  const int64_t nbatch = shape_numel(batch);
  if (out.numel() == 0) return out;

  // The bias [N] goes to GEMM, which adds it to each output row (no pass of its own).
  const bool has_bias = bias.defined();
  if (K == 0) {
    if (has_bias)
      copy_(out, bias);
    else
      fill_(out, 0.0);
    return out;
  }
  const Tensor bias_c = has_bias ? contiguous(bias) : Tensor();

  const MatLayout La = layout_or_copy(A, true), Lb = layout_or_copy(B, false);
  std::vector<int64_t> offa = batch_offsets(A, batch), offb = batch_offsets(B, batch);

  TZ_DISPATCH_FLOAT(a_in.dtype(), op, [&]<class T>() {
    const T* pa = A.t.template data<T>();
    const T* pb = B.t.template data<T>();
    T* pc = out.template data<T>();
    kernels::GemmArgs<T> g{pc,       N, pa, La.ld, La.trans, pb,   Lb.ld,
                           Lb.trans, M, N,  K,     T(1),     T(0), has_bias ? bias_c.template data<T>() : nullptr};

    // Fold the batch into M when every entry uses the same rhs matrix and the lhs
    // matrices follow each other as one tall row-major matrix (x [B, T, C] @ W [C, N]):
    // one big GEMM instead of many small ones.
    bool fold = nbatch > 1 && !La.trans;
    for (int64_t i = 0; fold && i < nbatch; ++i) fold = offb[i] == offb[0] && offa[i] == offa[0] + i * M * La.ld;
    if (nbatch == 1 || fold) {
      g.A = pa + offa[0];
      g.B = pb + offb[0];
      g.M = fold ? nbatch * M : M;
      kernels::gemm(g);
      return 0;
    }
    auto run = [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) {
        kernels::GemmArgs<T> gi = g;
        gi.A = pa + offa[i];
        gi.B = pb + offb[i];
        gi.C = pc + i * M * N;
        kernels::gemm(gi);
      }
    };
    const int64_t flops = 2 * M * N * K;
    if (flops < kParallelBatchFlops)
      parallel_for(nbatch, flops, run);
    else
      run(0, nbatch);
    return 0;
  });
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) { return matmul_impl(a, b, Tensor(), "matmul"); }

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  TZ_CHECK(x.defined() && weight.defined(), "linear: undefined input or weight");
  TZ_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out, in], got ", weight.shape());
  TZ_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: shape mismatch, x ", x.shape(), " vs weight ",
           weight.shape(), " (expected x [..., ", weight.size(1), "])");
  TZ_CHECK(x.dtype() == weight.dtype(), "linear: dtype mismatch, x ", dtype_name(x.dtype()), " vs weight ",
           dtype_name(weight.dtype()));
  if (bias.defined()) {
    TZ_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias must be [", weight.size(0),
             "] for weight ", weight.shape(), ", got ", bias.shape());
    TZ_CHECK(bias.dtype() == weight.dtype(), "linear: dtype mismatch, bias ", dtype_name(bias.dtype()), " vs weight ",
             dtype_name(weight.dtype()));
  }
  // W^T as a view: [in, out] with swapped strides (GEMM gets trans_b, no copy).
  Tensor wt =
      as_strided(weight, {weight.size(1), weight.size(0)}, {weight.stride(1), weight.stride(0)}, weight.offset());
  return matmul_impl(x, wt, bias, "linear");
}

}  // namespace tz::core
