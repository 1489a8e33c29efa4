// The activation registry; the formulas and papers are in activations.h.
#include "nn/ffn/activations.h"

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"

namespace tz::nn {

namespace {
constexpr double kSeluLambda = 1.0507009873554804934193349852946;  // Klambauer et al. 2017
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;

// a (e^min(x, 0) - 1) + max(x, 0): the min keeps exp from overflowing for large x.
Tensor elu(const Tensor& x, double a) { return relu(x) + a * (exp(minimum(x, zeros_like(x))) - 1.0); }

using Args = ActivationArgs;
constexpr ActivationEntry kActivations[] = {
    {"relu", [](const Tensor& x, const Args&) { return relu(x); }, false},
    {"leaky_relu", [](const Tensor& x, const Args&) { return maximum(x, 0.01 * x); }, false},
    {"prelu",
     [](const Tensor& x, const Args& a) {
       TZ_CHECK(a.slope.defined(), "activate: prelu needs its learned slope");
       return relu(x) + a.slope * minimum(x, zeros_like(x));
     },
     true},
    {"elu", [](const Tensor& x, const Args&) { return elu(x, 1.0); }, false},
    {"selu", [](const Tensor& x, const Args&) { return kSeluLambda * elu(x, kSeluAlpha); }, false},
    {"gelu", [](const Tensor& x, const Args&) { return gelu(x); }, false},
    {"gelu_tanh", [](const Tensor& x, const Args&) { return gelu_tanh(x); }, false},
    {"silu", [](const Tensor& x, const Args&) { return silu(x); }, false},
    {"swish", [](const Tensor& x, const Args& a) { return x * sigmoid(a.beta * x); }, false},
    {"mish", [](const Tensor& x, const Args&) { return x * tanh(softplus(x)); }, false},
    {"softplus", [](const Tensor& x, const Args&) { return softplus(x); }, false},
    {"sigmoid", [](const Tensor& x, const Args&) { return sigmoid(x); }, false},
    {"tanh", [](const Tensor& x, const Args&) { return tanh(x); }, false},
    {"relu_squared",
     [](const Tensor& x, const Args&) {
       Tensor r = relu(x);
       return r * r;
     },
     false},
    {"identity", [](const Tensor& x, const Args&) { return x; }, false},
};
}  // namespace

std::span<const ActivationEntry> activations() { return kActivations; }

std::string activation_names() {
  std::string out;
  for (const ActivationEntry& e : kActivations) out += (out.empty() ? "" : ", ") + std::string(e.name);
  return out;
}

const ActivationEntry& find_activation(const std::string& name, const std::string& key) {
  std::vector<std::string> names;
  for (const ActivationEntry& e : kActivations) {
    if (name == e.name) return e;
    names.push_back(e.name);
  }
  std::string guess = nearest(name, names);
  throw Error(cat_str("config key '", key, "': unknown activation '", name, "'",
                      guess.empty() ? "" : "; did you mean '" + guess + "'?", "; valid: ", activation_names()));
}

Tensor activate(const std::string& name, const Tensor& x, const ActivationArgs& args) {
  return find_activation(name).fn(x, args);
}

}  // namespace tz::nn
