// HGRN2: see hgrn2.h.
#include "nn/linear_rnn/hgrn2.h"

#include <cmath>

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

Hgrn2::Hgrn2(const Hgrn2Options& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0,
           "hgrn2: dim must be a positive multiple of heads, got dim ", o.dim, ", heads ", o.heads);
  TZ_CHECK(o.chunk >= 1, "hgrn2: linear_chunk must be >= 1, got ", o.chunk);
  TZ_CHECK(o.lower_bound >= 0 && o.lower_bound < 1, "hgrn2: the forget gate's lower bound must be in [0, 1), got ",
           o.lower_bound);
  const int64_t C = o.dim;
  // PyTorch's default scale, as HGRN (hgrn.cpp): at the zoo's 0.02 every forget gate starts at
  // σ(0) = 1/2 and every key at 1/2, the same for all tokens, and copying is never learnt
  auto lin = [&](const char* name) {
    return register_module(
        name, std::make_shared<Linear>(
                  LinearOptions{.in = C, .out = C, .bias = false, .init_std = 1 / std::sqrt(double(C))}, gen));
  };
  q_proj = lin("q_proj");
  f_proj = lin("f_proj");
  i_proj = lin("i_proj");
  o_proj = lin("o_proj");
  norm_weight = register_parameter("norm_weight", ones({C}));
}

Hgrn2::Inputs Hgrn2::inputs(const Tensor& x) const {
  const int64_t H = options.heads;
  const double lb = options.lower_bound;
  Tensor z = f_proj->forward(x);
  Inputs in;
  in.q = split_heads(silu(q_proj->forward(x)), H);
  in.v = split_heads(silu(i_proj->forward(x)), H);
  if (lb == 0) {  // f = σ(z): log f = log σ(z), 1 - f = σ(-z), both without cancellation
    in.log_f = split_heads(log_sigmoid(z), H);
    in.k = split_heads(sigmoid(-1.0 * z), H);
  } else {  // f = β + (1 - β) σ(z) >= β > 0
    Tensor s = sigmoid(z);
    in.log_f = split_heads(log(lb + (1 - lb) * s), H);
    in.k = split_heads((1 - lb) * sigmoid(-1.0 * z), H);
  }
  return in;
}

Tensor Hgrn2::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  LinearRnnState* st = state ? &own_state<LinearRnnState>(state, ctx) : nullptr;
  Inputs in = inputs(x);
  Tensor o =
      run_linear_attention(in.q, in.k, in.v, {.log_decay = in.log_f, .form = options.form, .chunk = options.chunk}, st);
  return o_proj->forward(rms_norm(merge_heads(o), norm_weight));
}

std::unique_ptr<MixerState> Hgrn2::make_state(int64_t batch, int64_t, DType dtype) const {
  const int64_t D = options.dim / options.heads;
  return make_linear_state(batch, options.heads, D, D, dtype);
}

std::string Hgrn2::describe() const {
  return cat_str("HGRN2(dim=", options.dim, ", heads=", options.heads, ", forget gate >= ", options.lower_bound, ", ",
                 form_text(options.form, options.chunk), ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_hgrn2(nn::Registry& r) {
  r.add({.id = "hgrn2",
         .summary = "HGRN2: GLA with the key tied to 1 - forget gate (bounded below by layer / depth), RMSNorm",
         .keys = {nn::kLinearChunk, nn::kLinearForm},
         .test_config = R"({"mixer": "hgrn2", "linear_chunk": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "hgrn2"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0, "hgrn2: a causal self-mixer only (no encoder or cross use)");
               TZ_CHECK(d.depth >= 1 && d.layer >= 0 && d.layer < d.depth, "hgrn2: layer ", d.layer,
                        " outside a stack of depth ", d.depth, " (the forget gate's lower bound is layer / depth)");
               return std::make_shared<nn::Hgrn2>(nn::Hgrn2Options{.dim = d.dim,
                                                                   .heads = d.heads,
                                                                   .chunk = nn::linear_chunk(c),
                                                                   .form = nn::linear_form(c),
                                                                   .lower_bound = double(d.layer) / double(d.depth)},
                                                  gen);
             },
         .chunk = 4,
         .learn_steps = 800,
         .learn_reason = "the copied tokens must pass through the gated state: copy 0.83 after 400 steps, 1.00 "
                         "after 800"});
}

}  // namespace tz::zoo
