// The linear-RNN mixers' shared pieces: see common.h.
#include "nn/linear_rnn/common.h"

#include "core/creation.h"

namespace tz::nn {

int64_t linear_chunk(const Config& config) {
  const int64_t c = config.get(kLinearChunk);
  TZ_CHECK(c >= 1, config.source(), ": linear_chunk must be >= 1, got ", c);
  return c;
}

LinearAttentionForm linear_form(const Config& config) {
  const std::string f = config.get(kLinearForm);
  for (auto form : {LinearAttentionForm::chunked, LinearAttentionForm::recurrent, LinearAttentionForm::parallel})
    if (f == linear_attention_form_name(form)) return form;
  TZ_CHECK(false, config.source(), ": linear_form must be one of chunked, recurrent, parallel; got '", f, "'");
  return LinearAttentionForm::chunked;
}

std::unique_ptr<MixerState> make_linear_state(int64_t batch, int64_t H, int64_t Dk, int64_t Dv, DType dtype) {
  auto s = std::make_unique<LinearRnnState>();
  s->S = zeros({batch, H, Dk, Dv}, dtype);
  return s;
}

Tensor split_heads(const Tensor& x, int64_t H) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2) / H;
  return x.view({B, T, H, D}).permute({0, 2, 1, 3});
}

Tensor merge_heads(const Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3);
  return x.permute({0, 2, 1, 3}).reshape({B, T, H * D});
}

HeadGroupNorm::HeadGroupNorm(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", ones({dim}));
  bias = register_parameter("bias", zeros({dim}));
}

Tensor HeadGroupNorm::forward(const Tensor& o) const {
  return merge_heads(layer_norm(o, Tensor(), Tensor(), eps)) * weight + bias;
}

std::string HeadGroupNorm::describe() const { return cat_str("HeadGroupNorm(", weight.size(0), ", eps=", eps, ")"); }

Tensor run_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, LinearAttentionSpec spec,
                            LinearRnnState* state) {
  if (state) {
    spec.h0 = state->S;
    if (q.size(2) == 1) spec.form = LinearAttentionForm::recurrent;
  }
  LinearAttentionResult r = linear_attention(q, k, v, spec);
  if (state) {
    state->S = r.state;
    state->length += q.size(2);
  }
  return r.out;
}

std::string form_text(LinearAttentionForm form, int64_t chunk) {
  return form == LinearAttentionForm::chunked ? cat_str(linear_attention_form_name(form), " chunk ", chunk)
                                              : linear_attention_form_name(form);
}

}  // namespace tz::nn
