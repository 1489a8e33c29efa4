// The engine: sweep order, accumulation, no-grad, detach, retain_grad, deep graphs, dot.
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/tensor.h"
#include "tests/test_util.h"

using namespace tz;

TEST_CASE("a leaf used twice accumulates both gradients") {
  Tensor x = tensor({1, 2, 3}, DType::f64).requires_grad_();
  Tensor y = sum(x * x + x * 3.0);  // dy/dx = 2x + 3
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 7, 9});
  // A second backward through a new graph accumulates into .grad.
  sum(x).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 8, 10});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("no_grad and detach keep tensors out of the graph") {
  Tensor x = tensor({1, 2}, DType::f64).requires_grad_();
  {
    NoGradGuard guard;
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(grad_enabled());
  }
  CHECK(grad_enabled());
  Tensor d = (x * 2.0).detach();
  CHECK_FALSE(d.requires_grad());
  Tensor z = sum(x * d);  // d is a constant: dz/dx = d
  z.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 4});
}

TEST_CASE("retain_grad keeps the gradient of a non-leaf") {
  Tensor x = tensor({1, 2}, DType::f64).requires_grad_();
  Tensor h = x * 3.0;
  h.retain_grad();
  Tensor y = sum(h * h);
  y.backward();
  CHECK(h.grad().to_vector<double>() == std::vector<double>{6, 12});
  CHECK(x.grad().to_vector<double>() == std::vector<double>{18, 36});
  CHECK_FALSE(h.is_leaf());
  CHECK(x.is_leaf());
}

TEST_CASE("the graph is freed after backward unless retained") {
  Tensor x = tensor({1, 2}, DType::f64).requires_grad_();
  Tensor y = sum(x * x);
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{4, 8});
  CHECK_THROWS_AS(y.backward(), Error);
}

TEST_CASE("backward errors name what is wrong") {
  Tensor x = tensor({1, 2}, DType::f64);
  CHECK_THROWS_AS(sum(x).backward(), Error);  // nothing requires grad
  Tensor w = tensor({1, 2}, DType::f64).requires_grad_();
  Tensor y = w * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(),
                       "backward: output of shape [2] is not a scalar; pass the "
                       "output gradient explicitly",
                       Error);
  y.backward(ones({2}, DType::f64));
  CHECK(w.grad().to_vector<double>() == std::vector<double>{2, 2});
  CHECK_THROWS_AS(tensor({1}, DType::i64).requires_grad_(), Error);
}

TEST_CASE("a chain of 100,000 ops backpropagates and frees without deep recursion") {
  Tensor x = scalar_tensor(1.5, DType::f64).requires_grad_();
  Tensor h = x;
  for (int i = 0; i < 50000; ++i) h = h.unsqueeze(0).squeeze(0);
  h.backward();
  CHECK(x.grad().item() == 1.0);
  // Dropping an un-run chain must not recurse either.
  Tensor g = x;
  for (int i = 0; i < 100000; ++i) g = g.unsqueeze(0).squeeze(0);
  g = Tensor();
  CHECK(true);
}

TEST_CASE("to_dot writes op names and shapes") {
  Tensor x = ones({2, 3}, DType::f64).requires_grad_();
  Tensor y = sum(x.t() * 2.0);
  std::string dot = to_dot(y);
  CHECK(dot.rfind("digraph autograd {", 0) == 0);
  CHECK(dot.find("sum") != std::string::npos);
  CHECK(dot.find("permute\\n[3, 2] f64") != std::string::npos);
  CHECK(dot.find("leaf") != std::string::npos);
}

TEST_CASE("op names and docs come from ops.def") {
  CHECK(std::string(op_name(OpId::matmul)) == "matmul");
  CHECK(std::string(op_doc(OpId::add)) == "a + b");
  CHECK(kNumOps > 50);
}

TEST_CASE("gradcheck catches a wrong backward") {
  // Deliberately wrong: claims d(x*x)/dx = x (a factor 2 missing).
  auto wrong = [](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor out = core::clone(x);
    double* p = out.data<double>();
    for (int64_t i = 0; i < out.numel(); ++i) p[i] *= p[i];
    make_node(OpId::mul, out, {x}, [x = x.detach()](const Tensor& g) { return std::vector<Tensor>{mul(g, x)}; });
    return out;
  };
  Tensor x = tensor({0.5, -1.5, 2}, DType::f64).requires_grad_();
  GradcheckResult r = gradcheck(wrong, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.report.find("input 0") != std::string::npos);
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[0]; }, {x}).ok);
  CHECK_THROWS_AS(
      gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {tensor({1}, DType::f32).requires_grad_()}),
      Error);
}
