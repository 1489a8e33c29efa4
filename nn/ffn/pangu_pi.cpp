// PanGu-π's series informed activation FFN and augmented shortcut; see pangu_pi.h.
#include "nn/ffn/pangu_pi.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"
#include "nn/registry.h"
#include "nn/residual/mixer_scope.h"
#include "nn/residual/residual.h"

namespace tz::nn {

Tensor series_activation(const ActivationEntry& act, const Tensor& h, const Tensor& a, const Tensor& b) {
  TZ_CHECK(a.dim() == 1 && b.dim() == 1 && a.size(0) == b.size(0) && a.size(0) > 0,
           "series_activation: a and b must be [n] with n ≥ 1, got ", a.shape(), " and ", b.shape());
  Tensor out;
  for (int64_t i = 0; i < a.size(0); ++i) {
    Tensor term = a.narrow(0, i, 1) * act.fn(h + b.narrow(0, i, 1), {});
    out = out.defined() ? out + term : term;
  }
  return out;
}

namespace {
// The base activation named by `key`; one with a learned slope is refused.
const ActivationEntry& plain_activation(const std::string& name, const std::string& key) {
  const ActivationEntry& e = find_activation(name, key);
  TZ_CHECK(!e.learned_slope, "config key '", key, "': '", name,
           "' has a learned slope; pangu_pi takes an activation without one");
  return e;
}
}  // namespace

SeriesMLP::SeriesMLP(const MLPOptions& o, int64_t terms, Generator& gen)
    : options(o), act_(&plain_activation(o.activation, kActivation.name)) {
  TZ_CHECK(o.dim > 0 && o.hidden > 0, "SeriesMLP: dim and hidden must be positive, got dim=", o.dim,
           " hidden=", o.hidden);
  TZ_CHECK(terms >= 1, "config key '", kSeriesTerms.name, "' must be ≥ 1, got ", terms);
  fc =
      register_module("fc", std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = o.hidden, .bias = o.bias}, gen));
  proj = register_module(
      "proj", std::make_shared<Linear>(
                  LinearOptions{.in = o.hidden, .out = o.dim, .bias = o.bias, .init_std = o.out_init_std}, gen));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
  series_a = register_parameter("series_a", full({terms}, 1.0 / double(terms)));
  series_b = register_parameter("series_b", terms == 1 ? zeros({1}) : linspace(-0.5, 0.5, terms));
}

Tensor SeriesMLP::forward(const Tensor& x) const {
  return drop->forward(proj->forward(series_activation(*act_, fc->forward(x), series_a, series_b)));
}

std::string SeriesMLP::describe() const {
  return cat_str("SeriesMLP(", options.dim, " -> ", options.hidden, " -> ", options.dim, ", Σ_", series_a.size(0),
                 " a_i ", options.activation, "(x + b_i))");
}

namespace {
// x + f(u) + Σ_i σ_T(u D_i) U_i on a mixer sublayer, x + f(u) on an FFN one; u = norm(x).
class AugmentedShortcut : public Residual {
 public:
  AugmentedShortcut(int64_t dim, int64_t shortcuts, int64_t bottleneck, const ActivationEntry& act, bool mixer)
      : dim_(dim), m_(mixer ? shortcuts : 0), r_(bottleneck), act_(&act) {}
  void build(Generator& gen) override {
    for (int64_t i = 0; i < m_; ++i) {
      auto down = std::make_shared<Linear>(
          LinearOptions{.in = dim_, .out = r_, .bias = false, .init_std = 1.0 / std::sqrt(double(dim_))}, gen);
      auto up = std::make_shared<Linear>(LinearOptions{.in = r_, .out = dim_, .bias = false}, gen);
      modules.emplace_back(cat_str("aug_down", i, "_"), down);
      modules.emplace_back(cat_str("aug_up", i, "_"), up);
      down_.push_back(down);
      up_.push_back(up);
    }
  }
  Tensor forward(const Tensor& x, const UnaryModule* norm, const Branch& f) const override {
    Tensor u = norm->forward(x);
    Tensor y = x + f(u);
    for (size_t i = 0; i < down_.size(); ++i) y = y + up_[i]->forward(act_->fn(down_[i]->forward(u), {}));
    return y;
  }
  std::string describe() const override {
    return m_ ? cat_str("augmented, pre-norm (", m_, " x ", act_->name, "(u D) U, R = ", r_, ")")
              : std::string("augmented, pre-norm (no shortcut beside an FFN)");
  }

 private:
  int64_t dim_, m_, r_;
  const ActivationEntry* act_;
  std::vector<std::shared_ptr<Linear>> down_, up_;
};
}  // namespace

const ResidualKind& residual_kind_augmented() {
  static const ResidualKind kind{
      .name = "augmented",
      .keys = {kAugShortcuts, kAugBottleneck, kAugActivation},
      .make = [](const ModelDims& d, const Config& c) -> std::unique_ptr<Residual> {
        const int64_t m = c.get(kAugShortcuts), r = c.get(kAugBottleneck);
        TZ_CHECK(m >= 1, c.source(), ": aug_shortcuts must be ≥ 1, got ", m);
        TZ_CHECK(r >= 0, c.source(), ": aug_bottleneck must be ≥ 0 (0: dim / 4), got ", r);
        const ActivationEntry& act = plain_activation(c.get(kAugActivation), kAugActivation.name);
        return std::make_unique<AugmentedShortcut>(d.dim, m, r > 0 ? r : std::max<int64_t>(1, d.dim / 4), act,
                                                   building_mixer_sublayer());
      }};
  return kind;
}

}  // namespace tz::nn

namespace tz::zoo {

void register_pangu_pi(nn::Registry& r) {
  r.add({.id = "pangu_pi",
         .summary = "PanGu-π: FFN with series activation Σ a_i σ(x + b_i) (learned a, b) and, with residual "
                    "augmented, bottleneck shortcuts x + MSA(u) + Σ σ(u D_i) U_i",
         .keys = {nn::kFfnMult, nn::kActivation, nn::kSeriesTerms, nn::kResidual, nn::kAugShortcuts, nn::kAugBottleneck,
                  nn::kAugActivation},
         .test_config = R"({"ffn": "pangu_pi", "series_terms": 2, "residual": "augmented", "aug_shortcuts": 2})",
         .example = R"({"ffn": "pangu_pi", "activation": "gelu", "series_terms": 4, "residual": "augmented"})",
         .ffn = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           nn::MLPOptions o = nn::ffn_options(d, c);
           o.activation = c.get(nn::kActivation);
           return std::make_shared<nn::SeriesMLP>(o, c.get(nn::kSeriesTerms), gen);
         }});
}

}  // namespace tz::zoo
