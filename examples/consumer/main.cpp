// Uses the installed package: one gradient, checked by hand; beside an application header
// whose path tensorzoo also has (data/tokenizer.h).
#include <data/tokenizer.h>
#include <tensorzoo/tensorzoo.h>

#include <cstdio>

static_assert(kApplicationTokenizer == 1, "<data/tokenizer.h> must be the application's own");

int main() {
  tz::Tensor x = tz::tensor({1, 2, 3}, tz::DType::f64).requires_grad_();
  tz::Tensor y = tz::sum(x * x);  // dy/dx = 2x
  y.backward();
  std::vector<double> g = x.grad().to_vector<double>();
  bool ok = g == std::vector<double>{2, 4, 6};
  std::printf("tensorzoo consumer: y = %.1f, dy/dx = [%.1f, %.1f, %.1f] %s\n", y.item(), g[0], g[1], g[2],
              ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
