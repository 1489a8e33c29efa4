// DenseMamba's dense hidden connections (equations in densemamba.h).
#include "nn/ssm/densemamba.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/random.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
std::string carry_key(int64_t layer) { return "densemamba.y." + std::to_string(layer); }
}  // namespace

DenseHidden::DenseHidden(int64_t width, int64_t m_, int64_t layer_, Generator& gen) : m(m_), layer(layer_) {
  const double std = 1.0 / std::sqrt(3.0 * double(width));
  for (int64_t i = 1; i <= std::min(m, layer); ++i) {
    // proj starts at 0, so a DenseMamba stack starts as the Mamba stack it extends
    const LinearOptions p{.in = width, .out = width, .bias = false, .init_std = 0};
    const LinearOptions g{.in = width, .out = width, .bias = false, .init_std = std};
    proj.push_back(register_module("proj" + std::to_string(i), std::make_shared<Linear>(p, gen)));
    gate.push_back(register_module("gate" + std::to_string(i), std::make_shared<Linear>(g, gen)));
  }
}

Tensor DenseHidden::fuse(const Tensor& y, const MixerContext& ctx) const {
  TZ_CHECK(ctx.carry, describe(),
           ": dense hidden connections read the earlier layers' outputs from the forward's "
           "carry; the caller keeps none (run it inside a model)");
  Tensor out = y;
  for (int64_t i = 1; i <= int64_t(proj.size()); ++i) {
    auto it = ctx.carry->find(carry_key(layer - i));
    TZ_CHECK(it != ctx.carry->end(), describe(), ": layer ", layer, " needs layer ", layer - i,
             "'s SSM output, which is not a DenseMamba layer of this forward");
    const Tensor& h = it->second;
    out = out + proj[size_t(i - 1)]->forward(h) * sigmoid(gate[size_t(i - 1)]->forward(h));
  }
  (*ctx.carry)[carry_key(layer)] = y;
  return out;
}

std::string DenseHidden::describe() const {
  return "DenseHidden(m " + std::to_string(m) + ", layer " + std::to_string(layer) + ", " +
         std::to_string(proj.size()) + " transitions)";
}

}  // namespace tz::nn

namespace tz::zoo {

void register_densemamba(nn::Registry& r) {
  r.add({.id = "densemamba",
         .summary = "DenseMamba: each Mamba layer adds gated projections of the SSM outputs of the m layers before it",
         .keys = {nn::kDenseM},
         .test_config = R"({"mixer": "mamba", "norm": "rmsnorm", "layout": "ss", "dim": 32, "dense_m": 1})",
         .example = R"({"dim": 256, "mixer": "mamba", "norm": "rmsnorm", "layout": "ssss", "dense_m": 2})",
         // the projections start at 0 (the stack starts as Mamba): drawn away from it, so that
         // the checks see the gates and the transitions at work
         .randomise =
             [](nn::Module& m, Generator& gen) {
               NoGradGuard no_grad;
               for (auto& [name, p] : m.named_parameters())
                 if (name.find(".dense.proj") != std::string::npos)
                   core::copy_(p, randn(p.shape(), gen, p.dtype()) * (1.0 / std::sqrt(double(p.size(1)))));
             },
         .learn_steps = 1500,
         .learn_reason = "a Mamba stack: the copied tokens must pass through the recurrent state (mamba's budget)"});
}

}  // namespace tz::zoo
