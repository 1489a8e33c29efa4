// Adam and AdamW (equations in adam.h).
#include "optim/adam.h"

#include <cmath>

#include "core/kernels/optim.h"

namespace tz::optim {

namespace {
template <class O>
const O& validated(const char* name, const O& o) {
  detail::check_lr(name, o.lr);
  detail::check_betas(name, o.betas[0], o.betas[1]);
  detail::check_eps(name, o.eps);
  detail::check_nonneg(name, "weight_decay", o.weight_decay);
  return o;
}
}  // namespace

// ---- Adam ------------------------------------------------------------------------------------

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options)
    : Optimizer("Adam", std::move(groups), validated("Adam", options).lr, {"exp_avg", "exp_avg_sq"}),
      options_(options) {}

Adam::Adam(const std::vector<std::pair<std::string, Tensor>>& named, const AdamOptions& options)
    : Adam(one_group(named, validated("Adam", options).weight_decay), options) {}

void Adam::update(Slot& s, const Tensor& g, double lr) {
  const double beta1 = options_.betas[0], beta2 = options_.betas[1];
  // Bias corrections at this parameter's step t (computed in f64).
  double c1 = 1 - std::pow(beta1, double(s.step)), c2 = 1 - std::pow(beta2, double(s.step));
  TZ_DISPATCH_FLOAT(s.param.dtype(), "Adam.step", [&]<class T>() {
    kernels::adam_update<T>(s.param.data<T>(), s.state[0].data<T>(), s.state[1].data<T>(), g.data<T>(), s.param.numel(),
                            lr, beta1, beta2, options_.eps, s.weight_decay, c1, c2);
  });
}

// ---- AdamW -----------------------------------------------------------------------------------

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options)
    : Optimizer("AdamW", std::move(groups), validated("AdamW", options).lr, {"exp_avg", "exp_avg_sq"}),
      options_(options) {}

AdamW::AdamW(const std::vector<std::pair<std::string, Tensor>>& named, const AdamWOptions& options)
    : AdamW(one_group(named, validated("AdamW", options).weight_decay), options) {}

void AdamW::update(Slot& s, const Tensor& g, double lr) {
  const double beta1 = options_.betas[0], beta2 = options_.betas[1];
  double c1 = 1 - std::pow(beta1, double(s.step)), c2 = 1 - std::pow(beta2, double(s.step));
  TZ_DISPATCH_FLOAT(s.param.dtype(), "AdamW.step", [&]<class T>() {
    kernels::adamw_update<T>(s.param.data<T>(), s.state[0].data<T>(), s.state[1].data<T>(), g.data<T>(),
                             s.param.numel(), lr, beta1, beta2, options_.eps, s.weight_decay, c1, c2);
  });
}

}  // namespace tz::optim
