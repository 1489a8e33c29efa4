// The engine: sweep order, accumulation, no-grad, detach, retain_grad, deep graphs, dot.
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/random.h"
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

// Slices and selects add their gradients into the input's gradient in place (the engine's
// scatter); these cases would go wrong if a slot that aliases another gradient were written.
TEST_CASE("views add their gradients in place without writing a gradient they alias") {
  Generator gen(3);
  Tensor a = randn({6, 4}, gen, DType::f64).requires_grad_();
  Tensor c = randn({6, 4}, gen, DType::f64).requires_grad_();
  Tensor w = randn({6, 4}, gen, DType::f64), w1 = randn({3, 4}, gen, DType::f64), w2 = randn({4}, gen, DType::f64),
         w3 = randn({3, 4}, gen, DType::f64);
  // Expected: x = 2a, y = 3c, s = x + y; loss = <s, w> + <x[1:4], w1> + <x[5], w2> + <x[0:6:2], w3>.
  std::vector<double> gx = w.to_vector<double>(), gy = w.to_vector<double>();
  auto add_rows = [&](const Tensor& g, const std::vector<int64_t>& rows) {
    std::vector<double> v = g.to_vector<double>();
    for (size_t r = 0; r < rows.size(); ++r)
      for (int64_t j = 0; j < 4; ++j) gx[size_t(rows[r] * 4 + j)] += v[r * 4 + size_t(j)];
  };
  add_rows(w1, {1, 2, 3});
  add_rows(w2, {5});
  add_rows(w3, {0, 2, 4});
  for (double& v : gx) v *= 2;
  for (double& v : gy) v *= 3;
  for (bool views_first : {false, true}) {  // both orders of the sweep over the consumers of x
    a.zero_grad();
    c.zero_grad();
    Tensor x = a * 2.0, y = c * 3.0;
    Tensor s = x + y;  // add's backward hands its own gradient tensor to x's and y's slots
    s.retain_grad();   // and that tensor is also s.grad()
    Tensor views = sum(x.narrow(0, 1, 3) * w1) + sum(x.select(0, 5) * w2) + sum(x.slice(0, 0, 6, 2) * w3);
    Tensor loss = views_first ? views + sum(s * w) : sum(s * w) + views;
    loss.backward();
    CHECK(testing::max_abs_diff(a.grad(), from_vector(gx, {6, 4})) < 1e-14);
    CHECK(testing::max_abs_diff(c.grad(), from_vector(gy, {6, 4})) < 1e-14);
    CHECK(testing::max_abs_diff(s.grad(), w) == 0);
  }
  // A leaf's gradient from an earlier backward, held by the caller, is not written.
  a.zero_grad();
  sum(a * 1.0).backward();
  Tensor held = a.grad();
  sum(a.narrow(0, 0, 2)).backward();
  CHECK(held.to_vector<double>() == std::vector<double>(24, 1.0));
  std::vector<double> twice(24, 1.0);
  for (size_t i = 0; i < 8; ++i) twice[i] = 2.0;
  CHECK(a.grad().to_vector<double>() == twice);
  // A retained graph through views runs twice and adds twice.
  a.zero_grad();
  Tensor r = sum(a.narrow(0, 2, 2)) + sum(a.select(0, 2));
  r.backward(Tensor(), true);
  r.backward();
  std::vector<double> want(24, 0.0);
  for (size_t i = 8; i < 16; ++i) want[i] = i < 12 ? 4.0 : 2.0;
  CHECK(a.grad().to_vector<double>() == want);
}
