// The optimizer base: parameter bookkeeping, the step loop, checkpoints (see optimizer.h).
#include "optim/optimizer.h"

#include <cmath>
#include <set>

#include "autograd/node.h"
#include "core/copy.h"
#include "core/creation.h"

namespace tz::optim {

namespace detail {
void check_lr(const char* opt, double lr) {
  TZ_CHECK(lr >= 0 && std::isfinite(lr), opt, ": option lr must be finite and >= 0, got ", lr);
}
void check_nonneg(const char* opt, const char* option, double value) {
  TZ_CHECK(value >= 0 && std::isfinite(value), opt, ": option ", option, " must be finite and >= 0, got ", value);
}
void check_betas(const char* opt, double beta1, double beta2) {
  TZ_CHECK(beta1 >= 0 && beta1 < 1, opt, ": option betas[0] must be in [0, 1), got ", beta1);
  TZ_CHECK(beta2 >= 0 && beta2 < 1, opt, ": option betas[1] must be in [0, 1), got ", beta2);
}
void check_eps(const char* opt, double eps) {
  TZ_CHECK(eps > 0 && std::isfinite(eps), opt, ": option eps must be finite and > 0, got ", eps);
}
}  // namespace detail

std::vector<ParamGroup> decay_groups(const std::vector<std::pair<std::string, Tensor>>& named, double weight_decay,
                                     const std::vector<std::string>& exclude) {
  TZ_CHECK(weight_decay >= 0 && std::isfinite(weight_decay), "decay_groups: weight_decay must be finite and >= 0, got ",
           weight_decay);
  ParamGroup decay, no_decay;
  decay.weight_decay = weight_decay;
  no_decay.weight_decay = 0.0;
  for (const auto& [name, p] : named) {
    TZ_CHECK(p.defined(), "decay_groups: parameter '", name, "' is an undefined tensor");
    const bool lookup_table = name.find("emb") != std::string::npos || name.ends_with("table.weight");
    bool excluded = p.dim() < 2 || lookup_table;
    for (const std::string& pattern : exclude)
      if (!pattern.empty() && name.find(pattern) != std::string::npos) excluded = true;
    ParamGroup& g = excluded ? no_decay : decay;
    g.names.push_back(name);
    g.params.push_back(p);
  }
  return {std::move(decay), std::move(no_decay)};
}

std::vector<ParamGroup> Optimizer::one_group(const std::vector<std::pair<std::string, Tensor>>& named,
                                             double weight_decay) {
  ParamGroup g;
  g.weight_decay = weight_decay;
  for (const auto& [name, p] : named) {
    g.names.push_back(name);
    g.params.push_back(p);
  }
  return {std::move(g)};
}

Optimizer::Optimizer(const char* name, std::vector<ParamGroup> groups, double lr, std::vector<std::string> kinds)
    : name_(name), groups_(std::move(groups)), kinds_(std::move(kinds)) {
  set_lr(lr);
  std::set<std::string> seen_names;
  std::set<const void*> seen_params;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& g = groups_[gi];
    TZ_CHECK(g.names.empty() || g.names.size() == g.params.size(), name_, ": group ", gi, " has ", g.names.size(),
             " names for ", g.params.size(), " parameters");
    TZ_CHECK(g.weight_decay >= 0 && std::isfinite(g.weight_decay), name_, ": group ", gi,
             " weight_decay must be finite and >= 0, got ", g.weight_decay);
    TZ_CHECK(g.lr_scale >= 0 && std::isfinite(g.lr_scale), name_, ": group ", gi,
             " lr_scale must be finite and >= 0, got ", g.lr_scale);
    if (g.names.empty())
      for (size_t i = 0; i < g.params.size(); ++i) g.names.push_back(cat_str(gi, '.', i));
    for (size_t i = 0; i < g.params.size(); ++i) {
      const std::string& pname = g.names[i];
      const Tensor& p = g.params[i];
      TZ_CHECK(p.defined(), name_, ": parameter '", pname, "' is an undefined tensor");
      TZ_CHECK(is_floating(p.dtype()), name_, ": parameter '", pname, "' has dtype ", dtype_name(p.dtype()),
               ", expected f32 or f64");
      // The fused kernels walk the data as one run, so the parameter must be one.
      TZ_CHECK(p.is_contiguous(), name_, ": parameter '", pname, "' of shape ", p.shape(), " is not contiguous");
      TZ_CHECK(seen_names.insert(pname).second, name_, ": duplicate parameter name '", pname, "'");
      TZ_CHECK(seen_params.insert(p.impl_ptr().get()).second, name_, ": parameter '", pname, "' is listed twice");
      Slot s;
      s.name = pname;
      s.param = p;
      s.weight_decay = g.weight_decay;
      s.lr_scale = g.lr_scale;
      for (size_t k = 0; k < kinds_.size(); ++k) s.state.push_back(zeros(p.shape(), p.dtype()));
      slots_.push_back(std::move(s));
    }
  }
}

void Optimizer::set_lr(double lr) {
  detail::check_lr(name_, lr);
  lr_ = lr;
}

void Optimizer::step() {
  NoGradGuard no_grad;
  for (Slot& s : slots_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    TZ_CHECK(g.shape() == s.param.shape(), name_, ": gradient of '", s.name, "' has shape ", g.shape(),
             ", parameter has ", s.param.shape());
    // Already contiguous with the parameter's dtype (the usual case): no copy.
    Tensor gc = core::contiguous_as(g, s.param.dtype());
    ++s.step;
    update(s, gc, lr_ * s.lr_scale);
  }
  ++step_count_;
}

void Optimizer::zero_grad() {
  for (Slot& s : slots_) s.param.zero_grad();
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> out;
  out["step"] = scalar_tensor(double(step_count_), DType::i64);
  for (const Slot& s : slots_) {
    out["step." + s.name] = scalar_tensor(double(s.step), DType::i64);
    for (size_t k = 0; k < kinds_.size(); ++k)
      out[kinds_[k] + "." + s.name] = core::clone(s.state[k]);  // a snapshot, not a view
  }
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  // Expected key -> expected shape, and where the value goes.
  std::map<std::string, std::pair<Shape, std::pair<int, int>>> expected;  // {slot, kind or -1}
  expected["step"] = {Shape{}, {-1, -1}};
  for (size_t i = 0; i < slots_.size(); ++i) {
    expected["step." + slots_[i].name] = {Shape{}, {int(i), -1}};
    for (size_t k = 0; k < kinds_.size(); ++k)
      expected[kinds_[k] + "." + slots_[i].name] = {slots_[i].param.shape(), {int(i), int(k)}};
  }
  std::string missing, unexpected, wrong;
  for (const auto& [key, spec] : expected)
    if (!state.count(key)) missing += (missing.empty() ? "" : ", ") + key;
  for (const auto& [key, t] : state) {
    auto it = expected.find(key);
    if (it == expected.end()) {
      unexpected += (unexpected.empty() ? "" : ", ") + key;
    } else if (!t.defined() || t.shape() != it->second.first) {
      wrong += cat_str(wrong.empty() ? "" : ", ", key, " (expected ", it->second.first, ", got ",
                       t.defined() ? shape_str(t.shape()) : std::string("undefined"), ")");
    }
  }
  TZ_CHECK(missing.empty() && unexpected.empty() && wrong.empty(), name_,
           ".load_state_dict: ", missing.empty() ? "" : "missing keys: " + missing + "; ",
           unexpected.empty() ? "" : "unexpected keys: " + unexpected + "; ",
           wrong.empty() ? "" : "wrong shapes: " + wrong);
  // Steps are read and checked first, so a bad value leaves the optimizer unchanged.
  auto read_step = [&](const std::string& key) {
    double v = state.at(key).item();
    TZ_CHECK(v >= 0 && v == std::floor(v), name_, ".load_state_dict: '", key, "' must be a whole number >= 0, got ", v);
    return int64_t(v);
  };
  int64_t total = read_step("step");
  std::vector<int64_t> steps;
  for (const Slot& s : slots_) steps.push_back(read_step("step." + s.name));
  NoGradGuard no_grad;
  step_count_ = total;
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].step = steps[i];
    for (size_t k = 0; k < kinds_.size(); ++k)
      core::copy_(slots_[i].state[k], state.at(kinds_[k] + "." + slots_[i].name));
  }
}

}  // namespace tz::optim
