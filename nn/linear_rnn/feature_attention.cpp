// Feature-map attention (performer, rfa, rebased, hedgehog, polysketchformer, dijiang) and
// PermuteFormer's position scheme: see feature_attention.h.
#include "nn/linear_rnn/feature_attention.h"

#include <cmath>
#include <cstring>

#include "core/creation.h"
#include "nn/linear_rnn/feature_maps.h"

namespace tz::nn {

const char* feature_map_name(FeatureMapKind kind) {
  switch (kind) {
    case FeatureMapKind::performer:
      return "performer";
    case FeatureMapKind::rfa:
      return "rfa";
    case FeatureMapKind::rebased:
      return "rebased";
    case FeatureMapKind::hedgehog:
      return "hedgehog";
    case FeatureMapKind::polysketch:
      return "polysketchformer";
    case FeatureMapKind::dijiang:
      return "dijiang";
  }
  return "?";
}

namespace {
Tensor l2_normalise(const Tensor& x) { return x * rsqrt(sum(x * x, {x.dim() - 1}, true) + 1e-12); }

int64_t int_pow(int64_t b, int64_t e) {
  int64_t r = 1;
  for (int64_t i = 0; i < e; ++i) r *= b;
  return r;
}
}  // namespace

FeatureAttention::FeatureAttention(const FeatureAttentionOptions& o, Generator& gen)
    : options(o), redraw_gen_(gen.bits(gen.advance(1))) {
  const char* name = feature_map_name(o.map);
  TZ_CHECK(o.dim > 0 && o.heads > 0 && o.dim % o.heads == 0, name,
           ": dim must be a positive multiple of heads, got dim ", o.dim, ", heads ", o.heads);
  TZ_CHECK(o.chunk >= 1, name, ": linear_chunk must be >= 1, got ", o.chunk);
  TZ_CHECK(o.rel_pairs == 0 || o.map == FeatureMapKind::performer, name,
           ": translational_equivariant_performer's position parts are for the performer map only");
  TZ_CHECK(o.features >= 0 && o.redraw >= 0, name, ": feature_count and feature_redraw must be >= 0, got ", o.features,
           ", ", o.redraw);
  const int64_t D = head_dim(), H = o.heads;
  if (options.features == 0) options.features = 4 * D;
  auto lin = [&](const char* n, int64_t out) {
    return register_module(n, std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = out, .bias = o.bias}, gen));
  };
  q_proj = lin("q_proj", o.dim);
  k_proj = lin("k_proj", o.dim);
  v_proj = lin("v_proj", o.dim);
  o_proj = lin("o_proj", o.dim);
  switch (o.map) {
    case FeatureMapKind::performer:
      random = register_buffer("random_features",
                               orthogonal_random_features(options.features, D + 2 * o.rel_pairs, gen, DType::f32));
      break;
    case FeatureMapKind::rfa:
      TZ_CHECK(o.sigma > 0, "rfa: rfa_sigma must be > 0, got ", o.sigma);
      random = register_buffer("random_features", randn({options.features, D}, gen, DType::f32));
      rfa_scale = register_parameter("scale", full({H, D}, o.sigma));
      if (o.gate) {
        gate_proj = register_module("gate_proj",
                                    std::make_shared<Linear>(LinearOptions{.in = o.dim, .out = H, .bias = true}, gen));
        // b_g = 2 (σ = 0.88): the state starts out remembering ~8 tokens rather than 2.
        for (int64_t h = 0; h < H; ++h) gate_proj->bias.data<float>()[h] = 2.0f;
      }
      break;
    case FeatureMapKind::rebased:
      gamma = register_parameter("gamma", ones({H, D}));
      beta = register_parameter("beta", zeros({H, D}));
      break;
    case FeatureMapKind::hedgehog: {
      map_weight = register_parameter("map_weight", eye(D).unsqueeze(0).expand({H, D, D}).contiguous());
      map_bias = register_parameter("map_bias", zeros({H, D}));
      break;
    }
    case FeatureMapKind::polysketch:
      TZ_CHECK(o.degree >= 2 && o.degree % 2 == 0 && o.degree <= 8,
               "polysketchformer: polysketch_degree must be even, 2 to 8, got ", o.degree);
      TZ_CHECK(o.sketch >= 1, "polysketchformer: polysketch_size must be >= 1, got ", o.sketch);
      sketch = register_buffer("sketch", polynomial_sketch(o.sketch, int_pow(D, o.degree / 2), gen, DType::f32));
      break;
    case FeatureMapKind::dijiang:
      random = register_buffer("random_features", dct_qmc_features(options.features, D, gen, DType::f32));
      qmc_weight = register_parameter("qmc_weight", ones({H, options.features}));
      break;
  }
  permutations = register_buffer("permutations", random_permutations(H, feature_dim(), gen));
}

int64_t FeatureAttention::feature_dim() const {
  const int64_t D = head_dim();
  switch (options.map) {
    case FeatureMapKind::performer:
    case FeatureMapKind::dijiang:
      return options.features;
    case FeatureMapKind::rfa:
      return 2 * options.features;
    case FeatureMapKind::rebased:
      return D * D;
    case FeatureMapKind::hedgehog:
      return 2 * D;
    case FeatureMapKind::polysketch:
      return options.sketch * options.sketch;
  }
  return 0;
}

Tensor FeatureAttention::features(const Tensor& x, bool query) const {
  switch (options.map) {
    case FeatureMapKind::performer:
      return favor_features(x * std::pow(double(head_dim()), -0.25), random, /*stabilise=*/query);
    case FeatureMapKind::rfa:
      return trig_features(l2_normalise(x) * rfa_scale.unsqueeze(1), random);
    case FeatureMapKind::rebased:
      return rebased_features(x, gamma, beta);
    case FeatureMapKind::hedgehog:
      return hedgehog_features(x, map_weight, map_bias);
    case FeatureMapKind::polysketch:
      return polysketch_features(l2_normalise(x), sketch, options.degree / 2);
    case FeatureMapKind::dijiang:
      return favor_features(x * std::pow(double(head_dim()), -0.25), random, /*stabilise=*/query) *
             qmc_weight.unsqueeze(1);
  }
  return Tensor();
}

void FeatureAttention::redraw() {
  NoGradGuard no_grad;
  if (options.map == FeatureMapKind::performer) {
    redraw_orthogonal_features(random, redraw_gen_);
  } else if (options.map == FeatureMapKind::rfa) {
    Tensor w = randn(random.shape(), redraw_gen_, DType::f64).to(random.dtype()).contiguous();
    const size_t n = size_t(w.numel()), bytes = random.dtype() == DType::f64 ? 8 : 4;
    std::memcpy(random.raw_data(), w.raw_data(), n * bytes);
  } else {
    return;
  }
  ++redraws_;
}

Tensor FeatureAttention::forward(const Tensor& x, const MixerContext& ctx, MixerState* state) {
  LinearRnnState* st = state ? &own_state<LinearRnnState>(state, ctx) : nullptr;
  const auto* permute = dynamic_cast<const PermutePositions*>(ctx.pos);
  const auto* rel = dynamic_cast<const RelativeSinusoids*>(ctx.pos);
  TZ_CHECK(
      permute || rel || !ctx.pos || !(ctx.pos->rotates() || ctx.pos->biases_scores() || ctx.pos->biases_with_queries()),
      describe(),
      ": a feature map has no scores to bias and rotates no q, k; use pos permuteformer, "
      "translational_equivariant_performer or an "
      "embedding scheme");
  if (is_training() && options.redraw > 0 && ++calls_ % options.redraw == 0) redraw();
  TZ_CHECK(!rel || rel->pairs == options.rel_pairs, describe(), ": built for ", options.rel_pairs,
           " sinusoid pairs of translational_equivariant_performer, the scheme has ", rel ? rel->pairs : 0);
  TZ_CHECK(rel || options.rel_pairs == 0, describe(),
           ": built for translational_equivariant_performer's position parts, but ctx.pos is another scheme");
  const int64_t H = options.heads;
  Tensor q = split_heads(q_proj->forward(x), H), k = split_heads(k_proj->forward(x), H);
  if (rel) {
    const int64_t Bq = x.size(0), Tq = x.size(1), P2 = 2 * rel->pairs;
    q = cat({q, rel->query_part(ctx.start, Tq, x.dtype()).expand({Bq, H, Tq, P2})}, 3);
    k = cat({k, rel->key_part(ctx.start, Tq, x.dtype()).expand({Bq, H, Tq, P2})}, 3);
  }
  Tensor q_raw = q, k_raw = k;
  q = features(q, true);
  k = features(k, false);
  if (distill && ctx.aux && !state)  // the softmax rows of the same q, k against the feature rows
    ctx.aux->add(cat_str("attention_kl.", ctx.layer), softmax_mimicry_kl(q_raw, k_raw, q, k));
  Tensor v = split_heads(v_proj->forward(x), H);
  LinearAttentionSpec spec{.normalise = true, .form = options.form, .chunk = options.chunk};
  const int64_t B = x.size(0), T = x.size(1);
  if (gate_proj) {  // gated RFA: log a_t = log σ(z_t), φ(k_t) weighted by 1 - σ(z_t) = σ(-z_t)
    Tensor z = gate_proj->forward(x).permute({0, 2, 1});  // [B, H, T]
    spec.log_decay = log_sigmoid(z);
    k = k * sigmoid(-z).unsqueeze(3);
  }
  if (permute) {
    q = permute_by_position(q, permutations, ctx.start);
    k = permute_by_position(k, permutations, ctx.start);
    if (permute->decay < 1) {
      Tensor g = full({B, H, T}, std::log(permute->decay), x.dtype());
      spec.log_decay = spec.log_decay.defined() ? spec.log_decay + g : g;
    }
  }
  Tensor y = run_linear_attention(q, k, v, spec, st);
  return o_proj->forward(merge_heads(y));
}

std::unique_ptr<MixerState> FeatureAttention::make_state(int64_t batch, int64_t capacity, DType dtype) const {
  return make_linear_state(batch, options.heads, feature_dim(), head_dim() + 1, dtype);
}

std::string FeatureAttention::describe() const {
  return cat_str(feature_map_name(options.map), "(dim=", options.dim, ", heads=", options.heads,
                 ", features=", feature_dim(), ", ", form_text(options.form, options.chunk), ")");
}

void PermutePositions::rotate(Tensor&, Tensor&, int64_t, int64_t) const {
  TZ_CHECK(false,
           "permuteformer: permutes the features of a feature-map mixer (performer, rfa, rebased, hedgehog, "
           "polysketchformer, dijiang); softmax attention has none");
}

std::string PermutePositions::describe() const { return cat_str("PermutePositions(decay=", decay, ")"); }

RelativeSinusoids::RelativeSinusoids(int64_t h, int64_t p, Generator& gen) : heads(h), pairs(p) {
  TZ_CHECK(h >= 1 && p >= 1, "translational_equivariant_performer: needs heads, tep_pairs >= 1, got ", h, ", ", p);
  alpha = register_parameter("alpha", randn({h, p}, gen));
  beta = register_parameter("beta", randn({h, p}, gen));
  std::vector<double> w(static_cast<size_t>(p));
  for (int64_t i = 0; i < p; ++i) w[size_t(i)] = M_PI * double(i + 1) / double(p + 1);
  freq = register_parameter("freq", from_vector(w, {p}).to(DType::f32));
}

std::pair<Tensor, Tensor> RelativeSinusoids::sinusoids(int64_t start, int64_t T, DType dtype) const {
  Tensor angle = arange(double(start), double(start + T), 1, dtype).reshape({1, 1, T, 1}) * freq.to(dtype);
  return {cos(angle), sin(angle)};  // [1, 1, T, P]
}

Tensor RelativeSinusoids::query_part(int64_t start, int64_t T, DType dtype) const {
  auto [c, s] = sinusoids(start, T, dtype);
  Tensor a = alpha.unsqueeze(1).unsqueeze(0), b = beta.unsqueeze(1).unsqueeze(0);  // [1, H, 1, P]
  return cat({a * c + b * s, a * s - b * c}, 3);  // M p: (α c + β s, α s - β c) per pair
}

Tensor RelativeSinusoids::key_part(int64_t start, int64_t T, DType dtype) const {
  auto [c, s] = sinusoids(start, T, dtype);
  return cat({c, s}, 3);
}

void RelativeSinusoids::rotate(Tensor&, Tensor&, int64_t, int64_t) const {
  TZ_CHECK(false,
           "translational_equivariant_performer: adds position parts to a performer's q and k before its "
           "random features (mixer performer); softmax attention has none");
}

std::string RelativeSinusoids::describe() const {
  return cat_str("RelativeSinusoids(heads=", heads, ", pairs=", pairs, ")");
}

}  // namespace tz::nn
