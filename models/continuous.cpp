#include "models/continuous.h"

#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "models/encoder_stack.h"
#include "models/keys.h"
#include "models/zoo.h"

namespace tz::models {

namespace cont {
const nn::Key<int64_t> kDimIn{"dim_in", 4, "input features"};
const nn::Key<int64_t> kDimOut{"dim_out", 2, "output features"};
const nn::Key<int64_t> kDim{"dim", 16, "width C"};
const nn::Key<int64_t> kDepth{"depth", 1, "layers"};
const nn::Key<int64_t> kHeads{"heads", 2, "heads"};
const nn::Key<int64_t> kContext{"context", 12, "longest sequence"};
const nn::Key<bool> kCausal{"causal", false, "causal self-attention"};
const nn::Key<bool> kCross{"cross", false, "cross-attend to a context sequence"};
const nn::Key<int64_t> kDimContext{"dim_context", 4, "context features (with cross)"};
}  // namespace cont

std::vector<nn::ConfigKey> continuous_keys() {
  return {cont::kDimIn,   cont::kDimOut, cont::kDim,   cont::kDepth,     cont::kHeads,
          cont::kContext, cont::kCausal, cont::kCross, cont::kDimContext};
}

namespace {
// Σ mask (pred - y)^2 / (Σ mask · width): mask [B, T] (nonzero = scored).
Tensor masked_mse(const Tensor& pred, const Tensor& y, const Tensor& mask) {
  Tensor m = mask.to(pred.dtype()).unsqueeze(-1);
  Tensor d = (pred - y) * m;
  return sum(d * d) / (sum(m).item() * double(pred.size(-1)));
}
}  // namespace

ContinuousWrapper::ContinuousWrapper(const nn::Config& config, const nn::Registry& registry, Generator& gen)
    : Model(config) {
  const nn::Config& c = config_;
  check_model_key(c, {"continuous_wrapper", "cross_attention"});
  dim_in = c.get(cont::kDimIn);
  dim_out = c.get(cont::kDimOut);
  dim = c.get(cont::kDim);
  const int64_t depth = c.get(cont::kDepth), heads = c.get(cont::kHeads);
  context_ = c.get(cont::kContext);
  causal = c.get(cont::kCausal);
  cross = c.get(cont::kCross);
  dim_context = c.get(cont::kDimContext);
  TZ_CHECK(dim_in > 0 && dim_out > 0 && dim_out <= dim_in && dim > 0 && depth > 0 && heads > 0 && dim % heads == 0 &&
               context_ > 0 && dim_context >= dim_out,
           c.source(), ": dims positive, heads dividing dim, dim_out <= dim_in and dim_out <= dim_context");
  TZ_CHECK(cross || !c.has(cont::kDimContext.name), c.source(), ": dim_context needs cross: true");
  const nn::ModelDims d{.dim = dim,
                        .heads = heads,
                        .context = context_,
                        .depth = depth,
                        .bias = c.get(kBias),
                        .dropout = c.get(kDropout)};
  project_in =
      register_module("project_in", std::make_shared<nn::Linear>(nn::LinearOptions{.in = dim_in, .out = dim}, gen));
  pos = register_module("pos", make_wrapper_positions(d, registry, c, gen));
  layers = register_module(
      "layers",
      make_stack({.depth = depth, .causal = causal, .context_dim = cross ? dim_context : 0}, d, registry, c, gen));
  norm = register_module("norm", registry.make_norm(c.get(kNorm), d, c, gen));
  project_out =
      register_module("project_out", std::make_shared<nn::Linear>(nn::LinearOptions{.in = dim, .out = dim_out}, gen));
  check_wrapper_keys(c, registry, continuous_keys());
}

Tensor ContinuousWrapper::forward(const std::vector<Tensor>& in, State* state, nn::AuxLosses* aux) {
  TZ_CHECK(!state, "ContinuousWrapper: no step form (", why_no_step(), ")");
  const Tensor& x = in.at(0);
  TZ_CHECK(x.dim() == 3 && x.size(2) == dim_in && x.size(1) <= context_,
           "ContinuousWrapper: expected x [B, T <= ", context_, ", ", dim_in, "], got ", x.shape());
  TZ_CHECK(!cross || in.size() >= 4, "ContinuousWrapper: cross needs inputs {x, mask, context, context_mask}");
  Tensor h = project_in->forward(x);
  Tensor p = pos->embed(0, x.size(1), h.dtype());
  std::map<std::string, Tensor> carry;
  nn::MixerContext ctx{.pos = pos.get(), .aux = aux, .carry = &carry, .key_padding = in.size() > 1 ? in[1] : Tensor()};
  if (cross) {
    ctx.context = &in[2];
    ctx.context_padding = in[3];
  }
  h = run_stack(*layers, p.defined() ? h + p : h, ctx);
  return project_out->forward(norm->forward(h));
}

Tensor ContinuousWrapper::loss(const Batch& b) {
  return masked_mse(forward(b.inputs), b.targets.to(b.inputs[0].dtype()), b.inputs[1]);
}

// Causal: y_t = x_{t-1}[:dim_out]; bidirectional: y_t = x_{t+1}[:dim_out]; cross: y_t = the
// mean of the visible context rows [:dim_out]. Non-causal samples pad a random tail.
Model::Batch ContinuousWrapper::sample(int64_t B, Generator& gen) const {
  const int64_t T = context_;
  Tensor x = randn({B, T, dim_in}, gen), mask = ones({B, T}, DType::i64), y = zeros({B, T, dim_out});
  std::vector<Tensor> in{x, mask};
  Tensor cx, cmask;
  if (cross) {
    cx = randn({B, T, dim_context}, gen);
    cmask = ones({B, T}, DType::i64);
  }
  for (int64_t b = 0; b < B; ++b) {
    int64_t L = causal ? T : gen.randint(T / 2, T + 1);
    for (int64_t t = L; t < T; ++t) mask.set({b, t}, 0.0);
    if (cross) {
      int64_t Lc = gen.randint(T / 2, T + 1);
      for (int64_t t = Lc; t < T; ++t) cmask.set({b, t}, 0.0);
      Tensor m = mean(cx.select(0, b).narrow(0, 0, Lc).narrow(1, 0, dim_out), {0}, true);  // [1, dim_out]
      core::copy_(y.select(0, b), m.expand({T, dim_out}));
    } else if (causal) {
      core::copy_(y.select(0, b).narrow(0, 1, T - 1), x.select(0, b).narrow(0, 0, T - 1).narrow(1, 0, dim_out));
    } else if (L > 1) {
      core::copy_(y.select(0, b).narrow(0, 0, L - 1), x.select(0, b).narrow(0, 1, L - 1).narrow(1, 0, dim_out));
    }
  }
  if (cross) in.insert(in.end(), {cx, cmask});
  return {in, y};
}

}  // namespace tz::models

namespace tz::zoo {

void register_continuous_wrapper(nn::Registry& r) {
  r.add(
      {.id = "continuous_wrapper",
       .summary = "Real-valued [B, T, dim_in] → project_in → attention layers (mask; causal option) → project_out",
       .keys = models::wrapper_keys(models::continuous_keys()),
       .test_config = R"({"dim_in": 4, "dim_out": 2, "dim": 16, "heads": 2, "context": 12, "causal": true})",
       .example =
           R"({"model": "continuous_wrapper", "dim_in": 32, "dim_out": 32, "dim": 256, "depth": 4, "heads": 4, "causal": false})",
       .model = [](const nn::Config& c, Generator& g) {
         return std::make_shared<models::ContinuousWrapper>(c, registry(), g);
       }});
}

// The cross-attention itself is the wrappers' attention with ModelDims::context_dim
// (models/wrapper_attention.h); its conformance model is the continuous wrapper with `cross`,
// a CrossAttender-style stack.
void register_cross_attention(nn::Registry& r) {
  r.add({.id = "cross_attention",
         .summary = "x += softmax(Q(x) K(c)^T / sqrt(d) + mask_c) V(c) over a context sequence c with a key mask",
         .keys = models::wrapper_keys(models::continuous_keys()),
         .test_config =
             R"({"dim_in": 4, "dim_out": 2, "dim": 16, "heads": 2, "context": 12, "cross": true, "dim_context": 4})",
         .example = R"({"model": "cross_attention", "cross": true, "dim_context": 512, "dim_in": 32, "dim_out": 32})",
         .model = [](const nn::Config& c, Generator& g) {
           return std::make_shared<models::ContinuousWrapper>(c, registry(), g);
         }});
}

}  // namespace tz::zoo
