// SGD with momentum (equations in sgd.h).
#include "optim/sgd.h"

#include "core/kernels/optim.h"

namespace tz::optim {

namespace {
const SGDOptions& validated(const SGDOptions& o) {
  detail::check_lr("SGD", o.lr);
  detail::check_nonneg("SGD", "momentum", o.momentum);
  detail::check_nonneg("SGD", "dampening", o.dampening);
  detail::check_nonneg("SGD", "weight_decay", o.weight_decay);
  TZ_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
           "SGD: option nesterov needs momentum > 0 and dampening = 0, got momentum ", o.momentum, ", dampening ",
           o.dampening);
  return o;
}
std::vector<std::string> sgd_kinds(const SGDOptions& o) {
  if (o.momentum != 0) return {"momentum"};
  return {};
}
}  // namespace

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : Optimizer("SGD", std::move(groups), validated(options).lr, sgd_kinds(options)), options_(options) {}

SGD::SGD(const std::vector<std::pair<std::string, Tensor>>& named, const SGDOptions& options)
    : SGD(one_group(named, validated(options).weight_decay), options) {}

void SGD::update(Slot& s, const Tensor& g, double lr) {
  const SGDOptions& o = options_;
  TZ_DISPATCH_FLOAT(s.param.dtype(), "SGD.step", [&]<class T>() {
    T* m = o.momentum != 0 ? s.state[0].data<T>() : nullptr;
    kernels::sgd_update<T>(s.param.data<T>(), m, g.data<T>(), s.param.numel(), lr, o.momentum, o.dampening, o.nesterov,
                           s.weight_decay, s.step == 1);
  });
}

}  // namespace tz::optim
