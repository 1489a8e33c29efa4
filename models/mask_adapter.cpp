#include "models/mask_adapter.h"

#include <limits>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/text.h"

namespace tz::models {

Tensor mask_score_bias(const Tensor& forgotten, const Tensor& padding, int64_t T, DType dtype) {
  const int64_t B = forgotten.defined() ? forgotten.size(0) : padding.size(0);
  std::vector<double> m(size_t(B * T * T), 0.0);
  std::vector<int64_t> f = forgotten.defined() ? forgotten.to_vector<int64_t>() : std::vector<int64_t>();
  std::vector<int64_t> p = padding.defined() ? padding.to_vector<int64_t>() : std::vector<int64_t>();
  for (const Tensor* t : {&forgotten, &padding})
    TZ_CHECK(!t->defined() || (t->shape() == Shape{B, T}), "mask: expected [", B, ", ", T, "] masks, got ", t->shape());
  const double hidden = -std::numeric_limits<double>::infinity();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < T; ++j) {
      const bool pad = !p.empty() && p[size_t(b * T + j)] == 0;
      const bool forgot = !f.empty() && f[size_t(b * T + j)] != 0;
      for (int64_t q = 0; q < T; ++q)
        if (pad || (forgot && q > j)) m[size_t((b * T + q) * T + j)] = hidden;
    }
  return from_vector(m, {B, 1, T, T}).to(dtype);
}

namespace {
// The model's scheme with an extra additive score term from query_score_bias.
class MaskedPositions : public nn::PositionScheme {
 public:
  MaskedPositions(const nn::PositionScheme* inner, Tensor mask) : inner_(inner), mask_(std::move(mask)) {}
  Tensor embed(int64_t start, int64_t T, DType dt) const override {
    return inner_ ? inner_->embed(start, T, dt) : Tensor();
  }
  Tensor qk_input(int64_t start, int64_t T, DType dt) const override {
    return inner_ ? inner_->qk_input(start, T, dt) : Tensor();
  }
  void rotate(Tensor& q, Tensor& k, int64_t qs, int64_t ks) const override {
    if (inner_) inner_->rotate(q, k, qs, ks);
  }
  bool rotates() const override { return inner_ && inner_->rotates(); }
  Tensor score_bias(int64_t H, int64_t qs, int64_t T, int64_t S, DType dt,
                    const nn::MixerContext* ctx = nullptr) const override {
    return inner_ ? inner_->score_bias(H, qs, T, S, dt, ctx) : Tensor();
  }
  bool biases_scores() const override { return inner_ && inner_->biases_scores(); }
  Tensor query_score_bias(const Tensor& q, const Tensor& k, int64_t qs, int64_t ks,
                          const nn::MixerContext* ctx = nullptr) const override {
    Tensor b = inner_ && inner_->biases_with_queries() ? inner_->query_score_bias(q, k, qs, ks, ctx) : Tensor();
    TZ_CHECK(mask_.size(2) == q.size(2) && mask_.size(3) == k.size(2), "mask: score mask ", mask_.shape(),
             " does not fit queries ", q.shape(), " and keys ", k.shape());
    return b.defined() ? b + mask_ : mask_;
  }
  bool biases_with_queries() const override { return true; }
  int64_t max_positions() const override { return inner_ ? inner_->max_positions() : 0; }
  std::string describe() const override { return "MaskedPositions(" + (inner_ ? inner_->describe() : "") + ")"; }

 private:
  const nn::PositionScheme* inner_;
  Tensor mask_;
};
}  // namespace

void MaskAdapter::apply(nn::MixerContext& ctx, int64_t T, DType dtype) {
  if (!ctx.forgotten_keys.defined() && !ctx.key_padding.defined()) return;
  scheme_ = std::make_unique<MaskedPositions>(ctx.pos, mask_score_bias(ctx.forgotten_keys, ctx.key_padding, T, dtype));
  ctx.pos = scheme_.get();
}

}  // namespace tz::models
