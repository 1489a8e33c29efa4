// Differentiable elementwise ops: each forward calls the core op, then records its backward
// right here. Binary ops broadcast like NumPy, so each input's gradient is summed back over
// the dims it was broadcast along (tz::sum_to). Closures capture detached tensors only, and
// only what backward reads; gradients of inputs that need none are skipped (Tensor()).
//
// Subgradients at kinks, chosen on purpose: relu'(0) = 0, |x|'(0) = 0; maximum/minimum send
// the whole gradient to a at ties; clamp passes the gradient where lo <= x <= hi (inclusive).
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/elementwise.h"

namespace tz {

using core::BinaryOp;
using core::UnaryOp;

namespace {
bool needs(const Tensor& t) { return t.requires_grad(); }
Tensor zero_like_scalar(const Tensor& t) { return scalar_tensor(0, t.dtype()); }
}  // namespace

// ---- binary ------------------------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = core::add(a, b);
  make_node(OpId::add, out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = core::sub(a, b);
  make_node(OpId::sub, out, {a, b}, [sa = a.shape(), sb = b.shape(), nb = needs(b)](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, sa), nb ? sum_to(neg(g), sb) : Tensor()};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = core::mul(a, b);
  bool na = needs(a), nb = needs(b);
  // d(ab)/da = b, d(ab)/db = a: each side saves the other operand.
  make_node(OpId::mul, out, {a, b},
            [ad = nb ? a.detach() : Tensor(), bd = na ? b.detach() : Tensor(), sa = a.shape(),
             sb = b.shape()](const Tensor& g) {
              return std::vector<Tensor>{bd.defined() ? sum_to(mul(g, bd), sa) : Tensor(),
                                         ad.defined() ? sum_to(mul(g, ad), sb) : Tensor()};
            });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = core::div(a, b);
  bool na = needs(a), nb = needs(b);
  // d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -out/b.
  make_node(OpId::div, out, {a, b},
            [bd = b.detach(), od = nb ? out.detach() : Tensor(), na, sa = a.shape(), sb = b.shape()](const Tensor& g) {
              Tensor gb = od.defined() ? sum_to(neg(mul(g, div(od, bd))), sb) : Tensor();
              return std::vector<Tensor>{na ? sum_to(div(g, bd), sa) : Tensor(), gb};
            });
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = core::binary(BinaryOp::pow, a, b);
  bool na = needs(a), nb = needs(b);
  // d/da a^b = b a^(b-1); d/db a^b = a^b log a, taken as 0 where a <= 0 (there a^b is only
  // defined for integer b, and PyTorch uses the same convention at a = 0).
  make_node(OpId::pow, out, {a, b},
            [ad = a.detach(), bd = b.detach(), od = nb ? out.detach() : Tensor(), na, sa = a.shape(),
             sb = b.shape()](const Tensor& g) {
              Tensor ga, gb;
              if (na) ga = sum_to(mul(g, mul(bd, pow(ad, add_scalar(bd, -1.0)))), sa);
              if (od.defined()) {
                Tensor pos = core::binary(BinaryOp::gt, ad, zero_like_scalar(ad));
                Tensor loga = log(where(pos, ad, scalar_tensor(1, ad.dtype())));  // log 1 = 0 where a <= 0
                gb = sum_to(mul(g, mul(od, loga)), sb);
              }
              return std::vector<Tensor>{ga, gb};
            });
  return out;
}

namespace {
// maximum (is_max) / minimum: the gradient goes to a where a wins or ties, else to b.
Tensor extremum(const Tensor& a, const Tensor& b, bool is_max) {
  Tensor out = is_max ? core::maximum(a, b) : core::minimum(a, b);
  make_node(is_max ? OpId::maximum : OpId::minimum, out, {a, b},
            [ad = a.detach(), bd = b.detach(), is_max](const Tensor& g) {
              Tensor a_wins = core::binary(is_max ? BinaryOp::ge : BinaryOp::le, ad, bd);
              Tensor zero = zero_like_scalar(g);
              return std::vector<Tensor>{sum_to(where(a_wins, g, zero), ad.shape()),
                                         sum_to(where(a_wins, zero, g), bd.shape())};
            });
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(a, b, false); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = core::where(cond, a, b);
  // cond gets no gradient (it is a selector, often integer).
  make_node(OpId::where, out, {cond, a, b}, [cd = cond.detach(), sa = a.shape(), sb = b.shape()](const Tensor& g) {
    Tensor zero = zero_like_scalar(g);
    return std::vector<Tensor>{Tensor(), sum_to(where(cd, g, zero), sa), sum_to(where(cd, zero, g), sb)};
  });
  return out;
}

// ---- with a scalar -----------------------------------------------------------------------
Tensor add_scalar(const Tensor& x, double s) {
  Tensor out = core::binary_scalar(BinaryOp::add, x, s, "add_scalar");
  make_node(OpId::add_scalar, out, {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor mul_scalar(const Tensor& x, double s) {
  Tensor out = core::binary_scalar(BinaryOp::mul, x, s, "mul_scalar");
  make_node(OpId::mul_scalar, out, {x}, [s](const Tensor& g) { return std::vector<Tensor>{mul_scalar(g, s)}; });
  return out;
}

Tensor pow_scalar(const Tensor& x, double p) {
  TZ_CHECK(!x.defined() || is_floating(x.dtype()), "pow_scalar: expected a floating dtype (f32 or f64), got ",
           dtype_name(x.dtype()));
  Tensor out = core::binary_scalar(BinaryOp::pow, x, p, "pow_scalar");
  // d/dx x^p = p x^(p-1); exactly 0 for p = 0 (avoids 0 * inf at x = 0).
  make_node(OpId::pow_scalar, out, {x}, [xd = x.detach(), p](const Tensor& g) {
    if (p == 0) return std::vector<Tensor>{zeros(g.shape(), g.dtype())};
    if (p == 1) return std::vector<Tensor>{g};
    if (p == 2) return std::vector<Tensor>{mul(g, mul_scalar(xd, 2.0))};
    return std::vector<Tensor>{mul(g, mul_scalar(pow_scalar(xd, p - 1), p))};
  });
  return out;
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  Tensor out = core::clamp(x, lo, hi);
  make_node(OpId::clamp, out, {x}, [xd = x.detach(), lo, hi](const Tensor& g) {
    return std::vector<Tensor>{core::clamp_backward(xd, lo, hi, g)};
  });
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  Tensor out = core::masked_fill(x, mask, value);
  // Filled positions no longer depend on x: their gradient is 0. The mask gets none.
  make_node(OpId::masked_fill, out, {x, mask}, [md = mask.detach()](const Tensor& g) {
    return std::vector<Tensor>{core::masked_fill(g, md, 0.0), Tensor()};
  });
  return out;
}

// ---- unary -------------------------------------------------------------------------------
namespace {
// Which forward values a derivative reads (see kernels::unary_backward): keep only those.
bool grad_reads_y(UnaryOp op) {
  return op == UnaryOp::exp || op == UnaryOp::sqrt || op == UnaryOp::rsqrt || op == UnaryOp::tanh ||
         op == UnaryOp::sigmoid;
}

Tensor unary_op(OpId id, UnaryOp op, const Tensor& x) {
  Tensor out = core::unary(op, x);
  if (!x.requires_grad() || !grad_enabled()) return out;
  // Save y or x, whichever the derivative reads. The kernel takes both pointers (y, x); the
  // one it does not read is given the saved tensor too.
  Tensor saved = grad_reads_y(op) ? out.detach() : x.detach();
  make_node(id, out, {x},
            [op, saved](const Tensor& g) { return std::vector<Tensor>{core::unary_backward(op, saved, saved, g)}; });
  return out;
}
}  // namespace

Tensor neg(const Tensor& x) {
  Tensor out = core::unary(UnaryOp::neg, x);
  make_node(OpId::neg, out, {x}, [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; });
  return out;
}
Tensor exp(const Tensor& x) { return unary_op(OpId::exp, UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary_op(OpId::log, UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary_op(OpId::sqrt, UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary_op(OpId::rsqrt, UnaryOp::rsqrt, x); }
Tensor abs(const Tensor& x) { return unary_op(OpId::abs, UnaryOp::abs, x); }
Tensor sin(const Tensor& x) { return unary_op(OpId::sin, UnaryOp::sin, x); }
Tensor cos(const Tensor& x) { return unary_op(OpId::cos, UnaryOp::cos, x); }
Tensor tanh(const Tensor& x) { return unary_op(OpId::tanh, UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(OpId::sigmoid, UnaryOp::sigmoid, x); }
Tensor log_sigmoid(const Tensor& x) { return unary_op(OpId::log_sigmoid, UnaryOp::log_sigmoid, x); }
Tensor softplus(const Tensor& x) { return unary_op(OpId::softplus, UnaryOp::softplus, x); }
Tensor relu(const Tensor& x) { return unary_op(OpId::relu, UnaryOp::relu, x); }
Tensor gelu(const Tensor& x) { return unary_op(OpId::gelu, UnaryOp::gelu, x); }
Tensor gelu_tanh(const Tensor& x) { return unary_op(OpId::gelu_tanh, UnaryOp::gelu_tanh, x); }
Tensor silu(const Tensor& x) { return unary_op(OpId::silu, UnaryOp::silu, x); }

Tensor tril(const Tensor& x, int64_t k) {
  Tensor out = core::tril(x, k);
  make_node(OpId::tril, out, {x}, [k](const Tensor& g) { return std::vector<Tensor>{tril(g, k)}; });
  return out;
}
Tensor triu(const Tensor& x, int64_t k) {
  Tensor out = core::triu(x, k);
  make_node(OpId::triu, out, {x}, [k](const Tensor& g) { return std::vector<Tensor>{triu(g, k)}; });
  return out;
}

// ---- operators ---------------------------------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double s) { return add_scalar(a, s); }
Tensor operator-(const Tensor& a, double s) { return add_scalar(a, -s); }
Tensor operator*(const Tensor& a, double s) { return mul_scalar(a, s); }
// x / s as x * (1/s): one rounding more than a true division (exact when s is a power of 2).
Tensor operator/(const Tensor& a, double s) { return mul_scalar(a, 1.0 / s); }
Tensor operator+(double s, const Tensor& a) { return add_scalar(a, s); }
Tensor operator-(double s, const Tensor& a) { return add_scalar(neg(a), s); }
Tensor operator*(double s, const Tensor& a) { return mul_scalar(a, s); }

}  // namespace tz
