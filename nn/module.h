// tz::nn::Module: the base of every layer and model.
//
// A module registers its parameters, buffers and child modules by name; names compose into
// PyTorch-like paths (`layers.3.attn.q_proj.weight`). Parameters are tensor handles shared
// with the subclass's fields, so an optimizer updating them in place, or load_state_dict()
// copying into them, is seen by the module at once.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace tz::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // One line describing this module's own configuration, e.g. "Linear(256 -> 1024, bias)".
  virtual std::string describe() const = 0;

  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  int64_t num_parameters() const;

  // Parameters and buffers by full name.
  std::map<std::string, Tensor> state_dict() const;
  // Copies values into the existing tensors. Strict: any missing, unexpected or wrongly
  // shaped key is reported by name, all in one tz::Error, and nothing is changed.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  // Writes the state dict as safetensors (atomically), with optional string metadata.
  void save(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;
  // Reads a safetensors file written by save() (or by Python's safetensors) into this
  // module by parameter name, strictly. Returns the file's metadata.
  std::map<std::string, std::string> load(const std::string& path, bool strict = true);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Converts every floating parameter and buffer to `dtype` (f64 for gradcheck). The
  // tensors are converted in place, so handles held by subclasses stay valid.
  void to(DType dtype);

  // The module tree with each module's description and parameter count.
  std::string tree(const std::string& name = "") const;

 protected:
  // Registers a trainable tensor (turns requires_grad on) and returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor t);
  // Registers a non-trainable tensor saved in the state dict (e.g. a fixed table).
  Tensor register_buffer(const std::string& name, Tensor t);
  // Drops a registered parameter (a Linear whose weight is replaced by a quantized copy).
  void remove_parameter(const std::string& name);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    check_name(name);
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void check_name(const std::string& name) const;
  void collect(const std::string& prefix, NamedTensors& out, bool buffers) const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A module with one input and one output of the same kind (norms, feed-forwards, ...), so
// that a block can hold "a norm" whatever its kind.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) const = 0;
};

// A list of modules named 0, 1, 2, ... (like torch.nn.ModuleList).
class ModuleList : public Module {
 public:
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    items_.push_back(m);
    return register_module(std::to_string(items_.size() - 1), std::move(m));
  }
  size_t size() const { return items_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const { return items_.at(i); }
  template <class M>
  std::shared_ptr<M> at(size_t i) const {
    return std::static_pointer_cast<M>(items_.at(i));
  }
  std::string describe() const override { return "ModuleList(" + std::to_string(items_.size()) + ")"; }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

}  // namespace tz::nn
