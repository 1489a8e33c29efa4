// Tensor's autograd state methods and the methods that forward to differentiable ops.
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/copy.h"

namespace tz {

bool Tensor::requires_grad() const {
  auto& m = impl().autograd;
  return m && m->requires_grad;
}

Tensor& Tensor::requires_grad_(bool on) {
  auto& m = impl().autograd;
  TZ_CHECK(!(m && m->grad_fn) || on,
           "requires_grad_: cannot turn off requires_grad on a non-leaf "
           "tensor made by ",
           grad_fn_name(), "; use detach()");
  TZ_CHECK(!on || is_floating(dtype()),
           "requires_grad_: only f32 and f64 tensors can require "
           "grad, got ",
           dtype_name(dtype()));
  if (!m) m = std::make_shared<AutogradMeta>();
  m->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const {
  auto& m = impl().autograd;
  return !(m && m->grad_fn);
}

Tensor Tensor::grad() const {
  auto& m = impl().autograd;
  return m ? m->grad : Tensor();
}

void Tensor::set_grad(const Tensor& g) const {
  auto& m = impl().autograd;
  if (!m) m = std::make_shared<AutogradMeta>();
  TZ_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient of shape ", g.shape(), " for a tensor of shape ",
           shape());
  m->grad = g;
}

void Tensor::zero_grad() const {
  if (auto& m = impl().autograd) m->grad = Tensor();
}

void Tensor::retain_grad() const {
  auto& m = impl().autograd;
  TZ_CHECK(m && m->requires_grad, "retain_grad: tensor does not require grad");
  if (m->grad_fn) {
    m->retain = true;
    m->grad_fn->retained = m;
  }
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  run_backward(*this, grad_output, retain_graph);
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage();
  impl->shape = shape();
  impl->strides = strides();
  impl->offset = offset();
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

const char* Tensor::grad_fn_name() const {
  auto& m = impl().autograd;
  return m && m->grad_fn ? op_name(m->grad_fn->op) : nullptr;
}

Tensor Tensor::operator-() const { return neg(*this); }
Tensor Tensor::sum(const Shape& dims, bool keepdim) const { return tz::sum(*this, dims, keepdim); }
Tensor Tensor::mean(const Shape& dims, bool keepdim) const { return tz::mean(*this, dims, keepdim); }

}  // namespace tz
