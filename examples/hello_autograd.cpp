// hello_autograd: a two-layer MLP learns XOR with plain gradient descent written out by hand.
//
//   h = tanh(x W1 + b1),  y = h W2 + b2,  loss = mean((y - t)^2)
//
// Every step builds the graph forward, calls loss.backward(), then updates each parameter
// with p -= lr * p.grad() inside a no-grad scope. At the end the graph of one step is
// written as Graphviz dot (render it with `dot -Tpng xor_graph.dot -o xor_graph.png`).
#include <cstdio>
#include <fstream>

#include <tensorzoo/tensorzoo.h>

using namespace tz;

int main() {
  Tensor x = tensor({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  Tensor target = tensor({0, 1, 1, 0}, {4, 1});

  Generator gen(0);
  const int64_t hidden = 8;
  Tensor w1 = randn({2, hidden}, gen, DType::f32, 0, 1.0).requires_grad_();
  Tensor b1 = zeros({hidden}).requires_grad_();
  Tensor w2 = randn({hidden, 1}, gen, DType::f32, 0, 0.5).requires_grad_();
  Tensor b2 = zeros({1}).requires_grad_();
  std::vector<Tensor> params = {w1, b1, w2, b2};

  auto forward = [&] {
    Tensor h = tanh(matmul(x, w1) + b1);
    Tensor y = matmul(h, w2) + b2;
    Tensor diff = y - target;
    return mean(diff * diff);
  };

  const double lr = 0.2;
  for (int step = 0; step <= 1000; ++step) {
    Tensor loss = forward();
    if (step % 100 == 0) std::printf("step %4d  loss %.6f\n", step, loss.item());
    loss.backward();
    NoGradGuard no_grad;  // the update itself is not part of any graph
    for (Tensor& p : params) {
      core::copy_(p, p - p.grad() * lr);
      p.zero_grad();
    }
  }

  Tensor h = tanh(matmul(x, w1) + b1);
  Tensor y = matmul(h, w2) + b2;
  std::printf("\n x1 x2 | target  prediction\n");
  for (int64_t i = 0; i < 4; ++i)
    std::printf("  %.0f  %.0f |   %.0f      %.3f\n", x.at({i, 0}), x.at({i, 1}), target.at({i, 0}), y.at({i, 0}));

  std::ofstream("xor_graph.dot") << to_dot(forward());
  std::printf("\nwrote the graph of one step to xor_graph.dot\n");
  return 0;
}
