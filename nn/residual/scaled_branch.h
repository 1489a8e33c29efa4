// x ← x + α f(x) with one learned scalar α per sublayer and no norm: the residual of ReZero
// (nn/residual/rezero.cpp) and SkipInit (nn/residual/skipinit.cpp), which differ only in
// the initial α. α is registered on the block as alpha<tag> (alpha1, alpha2).
#pragma once

#include <string>

#include "nn/residual/residual.h"

namespace tz::nn {

class ScaledBranch : public Residual {
 public:
  ScaledBranch(double alpha0, std::string name) : alpha0_(alpha0), name_(std::move(name)) {}
  void build(Generator&) override;
  Tensor forward(const Tensor& x, const UnaryModule*, const Branch& f) const override;
  bool has_norm() const override { return false; }
  bool final_norm() const override { return false; }
  std::string describe() const override;
  Tensor alpha;  // [1]

 private:
  double alpha0_;
  std::string name_;
};

}  // namespace tz::nn
