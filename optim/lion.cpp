// Lion (equations in lion.h).
#include "optim/lion.h"

#include "core/kernels/optim.h"

namespace tz::optim {

namespace {
const LionOptions& validated(const LionOptions& o) {
  detail::check_lr("Lion", o.lr);
  detail::check_betas("Lion", o.betas[0], o.betas[1]);
  detail::check_nonneg("Lion", "weight_decay", o.weight_decay);
  return o;
}
}  // namespace

Lion::Lion(std::vector<ParamGroup> groups, const LionOptions& options)
    : Optimizer("Lion", std::move(groups), validated(options).lr, {"exp_avg"}), options_(options) {}

Lion::Lion(const std::vector<std::pair<std::string, Tensor>>& named, const LionOptions& options)
    : Lion(one_group(named, validated(options).weight_decay), options) {}

void Lion::update(Slot& s, const Tensor& g, double lr) {
  TZ_DISPATCH_FLOAT(s.param.dtype(), "Lion.step", [&]<class T>() {
    kernels::lion_update<T>(s.param.data<T>(), s.state[0].data<T>(), g.data<T>(), s.param.numel(), lr,
                            options_.betas[0], options_.betas[1], s.weight_decay);
  });
}

}  // namespace tz::optim
