// ABC with ABC_MLP control: see abc.h.
#include "nn/linear_rnn/abc.h"

#include <cmath>

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

Abc::Abc(const AbcOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0,
           "abc_bounded_memory: dim must be a positive multiple of heads, got dim ", o.dim, ", heads ", o.heads);
  TZ_CHECK(o.slots >= 1, "abc_bounded_memory: abc_slots must be >= 1, got ", o.slots);
  TZ_CHECK(o.chunk >= 1, "abc_bounded_memory: linear_chunk must be >= 1, got ", o.chunk);
  const int64_t C = o.dim;
  auto lin = [&](const char* name, int64_t out) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = C, .out = out, .bias = false}, gen));
  };
  q_proj = lin("q_proj", C);
  k_proj = lin("k_proj", C);
  v_proj = lin("v_proj", C);
  phi_proj = lin("phi_proj", o.heads * o.slots);
  o_proj = lin("o_proj", C);
}

Tensor Abc::log_control(const Tensor& x) const {
  return split_heads(30.0 * tanh(phi_proj->forward(x) * (1.0 / 30)), options.heads);
}

Tensor Abc::attend(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_phi, AbcState* state) const {
  const int64_t T = q.size(2), n = log_phi.size(3);
  const LinearAttentionForm form = state && T == 1 ? LinearAttentionForm::recurrent : options.form;
  Tensor phi = exp(log_phi);  // [B, H, T, n]
  Tensor Z = cumsum(phi, 2);
  if (state) Z = Z + state->Z.unsqueeze(2);
  // pass 1: K̃_t q_t = (sum_j (q_t . k_j) φ_j) / Z_t; an empty slot (Z = 0) is left out
  LinearAttentionResult r1 =
      linear_attention(q, k, phi, {.h0 = state ? state->S1 : Tensor(), .form = form, .chunk = options.chunk});
  Tensor Zs = where(Z, Z, ones_like(Z));
  Tensor p = softmax(where(Z, r1.out / Zs, full_like(Z, -INFINITY)));
  // pass 2: sum_i p_ti Ṽ_t[i] = sum_j ((p_t / Z_t) . φ_j) v_j
  LinearAttentionResult r2 =
      linear_attention(p / Zs, phi, v, {.h0 = state ? state->S2 : Tensor(), .form = form, .chunk = options.chunk});
  if (state) {
    state->S1 = r1.state;
    state->S2 = r2.state;
    state->Z = Z.narrow(2, T - 1, 1).reshape({Z.size(0), Z.size(1), n});
    state->length += T;
  }
  return r2.out;
}

Tensor Abc::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == options.dim, describe(), ": x must be [B, T, ", options.dim, "], got ",
           x.shape());
  AbcState* st = state ? &own_state<AbcState>(state, ctx) : nullptr;
  const int64_t H = options.heads, D = options.dim / H;
  Tensor q = split_heads(q_proj->forward(x), H) * (1.0 / std::sqrt(double(D)));
  Tensor o = attend(q, split_heads(k_proj->forward(x), H), split_heads(v_proj->forward(x), H), log_control(x), st);
  return o_proj->forward(merge_heads(o));
}

std::unique_ptr<MixerState> Abc::make_state(int64_t batch, int64_t, DType dtype) const {
  const int64_t H = options.heads, D = options.dim / H, n = options.slots;
  auto s = std::make_unique<AbcState>();
  s->S1 = zeros({batch, H, D, n}, dtype);
  s->S2 = zeros({batch, H, n, D}, dtype);
  s->Z = zeros({batch, H, n}, dtype);
  return s;
}

std::string Abc::describe() const {
  return cat_str("ABC(dim=", options.dim, ", heads=", options.heads, ", slots ", options.slots, ", ",
                 form_text(options.form, options.chunk), ")");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_abc_bounded_memory(nn::Registry& r) {
  r.add({.id = "abc_bounded_memory",
         .summary = "ABC: n memory slots written by a learned control normalised over time, read by softmax",
         .keys = {nn::kAbcSlots, nn::kLinearChunk, nn::kLinearForm},
         .test_config = R"({"mixer": "abc_bounded_memory", "abc_slots": 8, "linear_chunk": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "abc_bounded_memory", "abc_slots": 32})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0,
                        "abc_bounded_memory: a causal self-mixer only (no encoder or cross use)");
               return std::make_shared<nn::Abc>(nn::AbcOptions{.dim = d.dim,
                                                               .heads = d.heads,
                                                               .slots = c.get(nn::kAbcSlots),
                                                               .chunk = nn::linear_chunk(c),
                                                               .form = nn::linear_form(c)},
                                                gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
