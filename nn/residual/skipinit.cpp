// SkipInit (De & Smith 2020, "Batch Normalization Biases Residual Blocks Towards the Identity
// Function in Deep Networks", arXiv:2002.10444):
//   x ← x + α f(x),   α a learned scalar per sublayer, no normalisation
// Batch norm makes a deep residual network trainable by shrinking each branch by about
// 1/√(depth) at initialisation; SkipInit removes the norm and starts α at 0 (the paper's
// default) or at a small value such as 1/√depth. It is ReZero's sum (concurrent work, the
// same module, nn/residual/scaled_branch.h); the `skipinit_alpha` key gives the initial α.
#include <cmath>

#include "core/text.h"
#include "nn/residual/scaled_branch.h"

namespace tz::nn {

inline const Key<double> kSkipInitAlpha{
    "skipinit_alpha", 0.0,
    "SkipInit: initial α of every sublayer's x + α f(x), ≥ 0 (0 = the identity at init; the paper's "
    "alternative is about 1/√depth)"};

const ResidualKind& residual_kind_skipinit() {
  static const ResidualKind kind{.name = "skipinit",
                                 .keys = {kSkipInitAlpha},
                                 .make = [](const ModelDims&, const Config& c) -> std::unique_ptr<Residual> {
                                   const double a = c.get(kSkipInitAlpha);
                                   TZ_CHECK(std::isfinite(a) && a >= 0, c.source(),
                                            ": skipinit_alpha must be a finite number ≥ 0, got ", a);
                                   return std::make_unique<ScaledBranch>(a, "skipinit");
                                 }};
  return kind;
}

}  // namespace tz::nn

namespace tz::zoo {

void register_skipinit(nn::Registry& r) {
  r.add({.id = "skipinit",
         .summary = "SkipInit: normaliser-free x + α·F(x), α a learned scalar initialised to 0 or ~1/√depth",
         .keys = {nn::kResidual, nn::kSkipInitAlpha},
         .test_config = R"({"residual": "skipinit", "skipinit_alpha": 0.5})",
         .example = R"({"residual": "skipinit", "depth": 64, "skipinit_alpha": 0.125})",
         .learn_steps = 2000,
         .learn_lr = 5e-3,
         .learn_reason = "no norms, as ReZero: 0.17 after the default 400 steps at lr 1e-2; 1.00 after 2000 at 5e-3"});
}

}  // namespace tz::zoo
