// xLSTM's mLSTM and sLSTM mixers: see xlstm.h.
#include "nn/linear_rnn/xlstm.h"

#include <cmath>

#include "core/copy.h"
#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {

void check_dims(const char* who, int64_t dim, int64_t heads) {
  TZ_CHECK(dim > 0 && heads > 0 && dim % heads == 0, who, ": dim must be a positive multiple of heads, got dim ", dim,
           ", heads ", heads);
}

void check_input(const Mixer& m, int64_t dim, const Tensor& x, const MixerContext& ctx) {
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim && x.size(1) >= 1, m.describe(), ": x must be [B, T >= 1, ", dim, "], got ",
           x.shape());
  TZ_CHECK(!ctx.key_padding.defined() && !ctx.forgotten_keys.defined() && !ctx.memory.defined() && ctx.segment == 0,
           m.describe(), ": a recurrence has no keys to mask and takes no segment memory");
}

// b_f spaced over [3, 6]: forget gates σ(b_f) from 0.95 to 0.998 at initialisation.
Tensor forget_bias(int64_t n) { return linspace(3.0, 6.0, n); }

}  // namespace

// ---- mLSTM ---------------------------------------------------------------------------------

MLstm::MLstm(const MLstmOptions& o, Generator& gen) : options(o) {
  check_dims("xlstm_mlstm", o.dim, o.heads);
  TZ_CHECK(o.chunk >= 1, "xlstm_mlstm: linear_chunk must be >= 1, got ", o.chunk);
  const int64_t C = o.dim, H = o.heads;
  auto lin = [&](const char* name, int64_t in, int64_t out, bool bias) {
    return register_module(name, std::make_shared<Linear>(LinearOptions{.in = in, .out = out, .bias = bias}, gen));
  };
  q_proj = lin("q_proj", C, C, false);
  k_proj = lin("k_proj", C, C, false);
  v_proj = lin("v_proj", C, C, false);
  gate_proj = lin("gate_proj", C, 2 * H, true);
  o_proj = lin("o_proj", C, C, true);
  out_proj = lin("out_proj", C, C, false);
  core::copy_(gate_proj->bias, cat({zeros({H}), forget_bias(H)}, 0));
  norm = register_module("norm", std::make_shared<HeadGroupNorm>(C));
}

MLstmInputs MLstm::cell_inputs(const Tensor& x) const {
  const int64_t H = options.heads, D = options.dim / H;
  Tensor gates = gate_proj->forward(x).transpose(1, 2);  // [B, 2 H, T]
  return {.q = split_heads(q_proj->forward(x), H),
          .k = split_heads(k_proj->forward(x), H) * (1.0 / std::sqrt(double(D))),
          .v = split_heads(v_proj->forward(x), H),
          .log_i = gates.narrow(1, 0, H),
          .log_f = log_sigmoid(gates.narrow(1, H, H))};
}

Tensor MLstm::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  check_input(*this, options.dim, x, ctx);
  MLstmState* st = state ? &own_state<MLstmState>(state, ctx) : nullptr;
  const int64_t B = x.size(0), T = x.size(1), H = options.heads, D = options.dim / H;
  LinearAttentionForm form = options.form;
  MLstmMemory h0 = st ? MLstmMemory{st->S, st->m} : mlstm_zero_memory(B, H, D, D, x.dtype());
  if (st && T == 1) form = LinearAttentionForm::recurrent;  // the decode step
  MLstmOutput r = mlstm(cell_inputs(x), h0, form, options.chunk);
  if (st) {
    st->S = r.memory.S;
    st->m = r.memory.m;
    st->length += T;
  }
  return out_proj->forward(sigmoid(o_proj->forward(x)) * norm->forward(r.h));
}

std::unique_ptr<MixerState> MLstm::make_state(int64_t batch, int64_t, DType dtype) const {
  const int64_t D = options.dim / options.heads;
  MLstmMemory z = mlstm_zero_memory(batch, options.heads, D, D, dtype);
  auto s = std::make_unique<MLstmState>();
  s->S = z.S;
  s->m = z.m;
  return s;
}

std::string MLstm::describe() const {
  return cat_str("mLSTM(dim=", options.dim, ", heads=", options.heads, ", exp input gate, sigmoid forget gate, ",
                 form_text(options.form, options.chunk), ")");
}

// ---- sLSTM ---------------------------------------------------------------------------------

SLstm::SLstm(const SLstmOptions& o, Generator& gen) : options(o) {
  check_dims("xlstm_slstm", o.dim, o.heads);
  const int64_t C = o.dim, H = o.heads, D = C / H;
  w_proj = register_module("w_proj", std::make_shared<Linear>(LinearOptions{.in = C, .out = 4 * C}, gen));
  out_proj =
      register_module("out_proj", std::make_shared<Linear>(LinearOptions{.in = C, .out = C, .bias = false}, gen));
  // bias laid out [H, 4, D]: the forget slot of every head gets b_f
  Tensor b = zeros({H, 4, D});
  core::copy_(b.narrow(1, 2, 1), forget_bias(D).view({1, 1, D}).expand({H, 1, D}));
  core::copy_(w_proj->bias, b.view({4 * C}));
  const double bound = 1.0 / std::sqrt(double(D));
  R = register_parameter("R", rand({H, D, 4 * D}, gen, DType::f32, -bound, bound));
  norm = register_module("norm", std::make_shared<HeadGroupNorm>(C));
}

Tensor SLstm::cell(const Tensor& x, SLstmMemory& memory, bool stabilised) const {
  const int64_t B = x.size(0), T = x.size(1), H = options.heads, D = options.dim / H;
  return slstm_scan(w_proj->forward(x).view({B, T, H, 4, D}), R, memory, stabilised);
}

Tensor SLstm::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  check_input(*this, options.dim, x, ctx);
  SLstmState* st = state ? &own_state<SLstmState>(state, ctx) : nullptr;
  const int64_t H = options.heads, D = options.dim / H;
  SLstmMemory mem = st ? SLstmMemory{st->c, st->n, st->m, st->h} : slstm_zero_memory(x.size(0), H, D, x.dtype());
  Tensor h = cell(x, mem);
  if (st) {
    st->c = mem.c;
    st->n = mem.n;
    st->m = mem.m;
    st->h = mem.h;
    st->length += x.size(1);
  }
  return out_proj->forward(norm->forward(h));
}

std::unique_ptr<MixerState> SLstm::make_state(int64_t batch, int64_t, DType dtype) const {
  SLstmMemory z = slstm_zero_memory(batch, options.heads, options.dim / options.heads, dtype);
  auto s = std::make_unique<SLstmState>();
  s->c = z.c;
  s->n = z.n;
  s->m = z.m;
  s->h = z.h;
  return s;
}

std::string SLstm::describe() const {
  return cat_str("sLSTM(dim=", options.dim, ", heads=", options.heads,
                 ", block-diagonal recurrence, exp input gate, sigmoid forget gate, sequential)");
}

}  // namespace tz::nn

namespace tz::zoo {

void register_xlstm_mlstm(nn::Registry& r) {
  r.add({.id = "xlstm_mlstm",
         .summary = "xLSTM mLSTM: matrix memory with exponential input gate and stabiliser, "
                    "on the chunked linear-attention kernel",
         .keys = {nn::kLinearChunk, nn::kLinearForm},
         .test_config = R"({"mixer": "xlstm_mlstm", "linear_chunk": 4})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "xlstm_mlstm"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0,
                        "xlstm_mlstm: a causal self-mixer only (no encoder or cross use)");
               return std::make_shared<nn::MLstm>(
                   nn::MLstmOptions{
                       .dim = d.dim, .heads = d.heads, .chunk = nn::linear_chunk(c), .form = nn::linear_form(c)},
                   gen);
             },
         .chunk = 4});
}

void register_xlstm_slstm(nn::Registry& r) {
  r.add({.id = "xlstm_slstm",
         .summary = "xLSTM sLSTM: scalar memory, exponential gating with stabiliser, block-diagonal "
                    "recurrent memory mixing; sequential",
         .test_config = R"({"mixer": "xlstm_slstm"})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "xlstm_slstm"})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config&, Generator& gen) {
               TZ_CHECK(d.causal && d.context_dim == 0,
                        "xlstm_slstm: a causal self-mixer only (no encoder or cross use)");
               return std::make_shared<nn::SLstm>(nn::SLstmOptions{.dim = d.dim, .heads = d.heads}, gen);
             },
         .learn_steps = 1200,
         .learn_reason = "the copied tokens must pass through D scalar memories per head, written one step at a "
                         "time: copy 0.65 after 400 steps (loss 0.95), 0.95 after 1200"});
}

}  // namespace tz::zoo
