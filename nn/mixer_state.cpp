// Saving and restoring a mixer's decoding state by name (nn/mixer.h): the two visitors.
#include <functional>
#include <set>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/mixer.h"

namespace tz::nn {

namespace {
// Walks a state, calling `on_tensor` / `on_count` with each dotted name.
class Walker : public StateVisitor {
 public:
  using OnTensor = std::function<void(const std::string&, Tensor&)>;
  using OnCount = std::function<void(const std::string&, int64_t&)>;
  Walker(OnTensor t, OnCount c) : on_tensor_(std::move(t)), on_count_(std::move(c)) {}
  void tensor(const std::string& name, Tensor& t) override { on_tensor_(prefix_ + name, t); }
  void count(const std::string& name, int64_t& n) override { on_count_(prefix_ + name, n); }
  void nested(const std::string& name, MixerState& s) override {
    std::string outer = prefix_;
    prefix_ += name + ".";
    s.visit(*this);
    prefix_ = outer;
  }

 private:
  OnTensor on_tensor_;
  OnCount on_count_;
  std::string prefix_;
};
}  // namespace

std::map<std::string, Tensor> save_state(MixerState& state) {
  std::map<std::string, Tensor> out;
  auto add = [&](const std::string& name, Tensor t) {
    TZ_CHECK(out.emplace(name, std::move(t)).second, "save_state: the name '", name, "' is listed twice");
  };
  Walker w(
      [&](const std::string& name, Tensor& t) {
        if (t.defined()) add(name, t.contiguous().clone());
      },
      [&](const std::string& name, int64_t& n) { add(name, full({1}, double(n), DType::i64)); });
  state.visit(w);
  return out;
}

void restore_state(MixerState& state, const std::map<std::string, Tensor>& saved) {
  std::set<std::string> used;
  auto find = [&](const std::string& name) -> const Tensor* {
    auto it = saved.find(name);
    if (it == saved.end()) return nullptr;
    used.insert(name);
    return &it->second;
  };
  Walker w(
      [&](const std::string& name, Tensor& t) {
        const Tensor* s = find(name);
        if (!s) {  // saved undefined: the fresh state must not hold it either
          TZ_CHECK(!t.defined(), "restore_state: '", name, "' is missing from the saved state");
          return;
        }
        TZ_CHECK(!t.defined() || (t.shape() == s->shape() && t.dtype() == s->dtype()), "restore_state: '", name,
                 "' was saved as ", s->shape(), " ", dtype_name(s->dtype()), ", the state holds ", t.shape(), " ",
                 dtype_name(t.dtype()));
        t = s->clone();
      },
      [&](const std::string& name, int64_t& n) {
        const Tensor* s = find(name);
        TZ_CHECK(s && s->dtype() == DType::i64 && s->numel() == 1, "restore_state: the counter '", name,
                 "' is missing from the saved state (or is not one i64)");
        n = int64_t(s->item());
      });
  state.visit(w);
  for (const auto& [name, t] : saved)
    TZ_CHECK(used.count(name), "restore_state: the saved '", name, "' is not part of this state");
}

Tensor append_history(Tensor& history, const Tensor& rows, int64_t start) {
  const int64_t L = history.size(1), T = rows.size(1);
  TZ_CHECK(start >= 0 && start + T <= L, "append_history: positions ", start, "..", start + T - 1,
           " do not fit a history of ", L);
  Tensor kept = start > 0 ? cat({history.narrow(1, 0, start), rows}, 1) : rows;
  history = start + T < L ? cat({kept, history.narrow(1, start + T, L - start - T)}, 1) : kept;
  return kept;
}

Tensor future_mask(int64_t T, int64_t S, int64_t q0, int64_t k0) {
  std::vector<double> future(size_t(T * S), 0.0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) future[size_t(i * S + j)] = k0 + j > q0 + i;
  return from_vector(future, {T, S});
}

}  // namespace tz::nn
