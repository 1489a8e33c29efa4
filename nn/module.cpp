#include "nn/module.h"

#include <sstream>

#include "autograd/node.h"
#include "core/copy.h"
#include "core/safetensors.h"

namespace tz::nn {

void Module::check_name(const std::string& name) const {
  TZ_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module: invalid name '", name,
           "' (non-empty, no dots)");
  for (auto& [n, t] : params_) TZ_CHECK(n != name, "Module: name '", name, "' registered twice");
  for (auto& [n, t] : buffers_) TZ_CHECK(n != name, "Module: name '", name, "' registered twice");
  for (auto& [n, m] : children_) TZ_CHECK(n != name, "Module: name '", name, "' registered twice");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_name(name);
  TZ_CHECK(t.defined() && is_floating(t.dtype()), "Module: parameter '", name, "' must be a defined f32/f64 tensor");
  t.requires_grad_(true);
  params_.emplace_back(name, t);
  return t;
}

void Module::remove_parameter(const std::string& name) {
  for (auto it = params_.begin(); it != params_.end(); ++it)
    if (it->first == name) {
      params_.erase(it);
      return;
    }
  throw Error(cat_str("Module: no parameter '", name, "' to remove"));
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_name(name);
  TZ_CHECK(t.defined(), "Module: buffer '", name, "' is undefined");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, NamedTensors& out, bool buffers) const {
  for (auto& [n, t] : buffers ? buffers_ : params_) out.emplace_back(prefix + n, t);
  for (auto& [n, m] : children_) m->collect(prefix + n + ".", out, buffers);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out, false);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", out, true);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [n, t] : named_parameters()) out[n] = t.detach();
  for (auto& [n, t] : named_buffers()) out[n] = t.detach();
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::map<std::string, Tensor> own = state_dict();
  std::vector<std::string> missing, unexpected, wrong;
  for (auto& [n, t] : own) {
    auto it = state.find(n);
    if (it == state.end()) {
      missing.push_back(n);
    } else if (it->second.shape() != t.shape()) {
      wrong.push_back(cat_str(n, " (expected ", t.shape(), ", got ", it->second.shape(), ")"));
    }
  }
  for (auto& [n, t] : state)
    if (!own.count(n)) unexpected.push_back(n);
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s;
  };
  std::string problems;
  if (!wrong.empty()) problems += "wrong shape: " + join(wrong) + "; ";
  if (strict && !missing.empty()) problems += "missing: " + join(missing) + "; ";
  if (strict && !unexpected.empty()) problems += "unexpected: " + join(unexpected) + "; ";
  TZ_CHECK(problems.empty(), "load_state_dict: ", problems.substr(0, problems.size() - 2));
  NoGradGuard no_grad;
  for (auto& [n, t] : own) {
    auto it = state.find(n);
    if (it != state.end()) core::copy_(t, it->second);
  }
}

void Module::save(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  save_safetensors(path, state_dict(), metadata);
}

std::map<std::string, std::string> Module::load(const std::string& path, bool strict) {
  TensorFile f = load_safetensors(path);
  try {
    load_state_dict(f.tensors, strict);
  } catch (const Error& e) {
    throw Error(cat_str(path, ": ", e.what()));
  }
  return f.metadata;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (auto& [n, t] : named_parameters()) t.zero_grad();
}

void Module::to(DType dtype) {
  TZ_CHECK(is_floating(dtype), "Module::to: expected f32 or f64, got ", dtype_name(dtype));
  auto convert = [&](const Tensor& t) {
    if (t.dtype() == dtype || !is_floating(t.dtype())) return;
    Tensor c = core::contiguous_as(t, dtype);
    TensorImpl& impl = t.impl();
    impl.storage = c.storage();
    impl.strides = c.strides();
    impl.offset = 0;
    impl.dtype = dtype;
    t.zero_grad();
  };
  for (auto& [n, t] : named_parameters()) convert(t);
  for (auto& [n, t] : named_buffers()) convert(t);
}

namespace {
std::string with_commas(int64_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') s += ',';
    s += digits[i];
  }
  return s;
}
}  // namespace

std::string Module::tree(const std::string& name) const {
  std::ostringstream os;
  // One line per module: "name: description  (N params)"; own parameters listed beneath.
  struct Item {
    const Module* m;
    std::string name;
    int depth;
  };
  std::vector<Item> stack{{this, name.empty() ? "(root)" : name, 0}};
  while (!stack.empty()) {
    Item it = stack.back();
    stack.pop_back();
    std::string pad(size_t(2 * it.depth), ' ');
    os << pad << it.name << ": " << it.m->describe() << "  [" << with_commas(it.m->num_parameters()) << " params]\n";
    for (auto& [n, t] : it.m->params_)
      os << pad << "  ." << n << " " << shape_str(t.shape()) << " " << dtype_name(t.dtype()) << "\n";
    for (auto c = it.m->children_.rbegin(); c != it.m->children_.rend(); ++c)
      stack.push_back({c->second.get(), c->first, it.depth + 1});
  }
  return os.str();
}

}  // namespace tz::nn
