// The registry entries of the feature-map attentions (feature_attention.h): performer, rfa,
// rebased, hedgehog, polysketchformer, dijiang (mixers) and permuteformer (a position scheme the
// feature-map mixers read).
#include "nn/linear_rnn/feature_attention.h"
#include "nn/registry.h"

namespace tz::zoo {

inline const nn::Key<int64_t> kTepPairs{"tep_pairs", 4,
                                        "P: sinusoid pairs appended to a performer's q and k (relative positions)"};

namespace {
// The model's position scheme id (declared in models/keys.h): the performer draws its random
// features over D + 2P columns when it is translational_equivariant_performer.
const nn::Key<std::string> kPosId{"pos", "learned_abs_pe", "position scheme id"};

nn::FeatureAttentionOptions read_options(const nn::ModelDims& d, const nn::Config& c, nn::FeatureMapKind map) {
  TZ_CHECK(d.causal && d.context_dim == 0, nn::feature_map_name(map),
           ": a causal self-mixer only (no encoder or cross use)");
  return {.dim = d.dim,
          .heads = d.heads,
          .map = map,
          .features = c.get(nn::kFeatureCount),
          .redraw = c.get(nn::kFeatureRedraw),
          .sigma = c.get(nn::kRfaSigma),
          .gate = c.get(nn::kRfaGate),
          .degree = c.get(nn::kPolyDegree),
          .sketch = c.get(nn::kPolySize),
          .rel_pairs = map == nn::FeatureMapKind::performer && c.get(kPosId) == "translational_equivariant_performer"
                           ? c.get(kTepPairs)
                           : 0,
          .chunk = nn::linear_chunk(c),
          .form = nn::linear_form(c),
          .bias = d.bias};
}

nn::MixerFactory factory(nn::FeatureMapKind map) {
  return [map](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
    return std::make_shared<nn::FeatureAttention>(read_options(d, c, map), gen);
  };
}
}  // namespace

void register_performer(nn::Registry& r) {
  r.add({.id = "performer",
         .summary = "Performer: FAVOR+ positive orthogonal random features, redrawn on a schedule, as linear attention",
         .keys = {nn::kFeatureCount, nn::kFeatureRedraw, nn::kLinearChunk, nn::kLinearForm},
         .test_config =
             R"({"mixer": "performer", "linear_chunk": 4, "heads": 1, "feature_redraw": 0, "feature_count": 128})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "performer", "feature_count": 256})",
         .mixer = factory(nn::FeatureMapKind::performer),
         .chunk = 4});
}

void register_rfa(nn::Registry& r) {
  r.add(
      {.id = "rfa",
       .summary = "Random Feature Attention: [sin, cos] random features of unit q, k, gated decay",
       .keys = {nn::kFeatureCount, nn::kFeatureRedraw, nn::kRfaSigma, nn::kRfaGate, nn::kLinearChunk, nn::kLinearForm},
       // Ungated, σ = 1.5, 128 features: at 64 features the estimate's noise is about the size of
       // most kernel values, and copy stayed at 0.07-0.10 after 400 steps (gated or not, σ 1 to
       // 3); 256 features reached 1.00.
       .test_config =
           R"({"mixer": "rfa", "linear_chunk": 4, "heads": 1, "feature_redraw": 0, "rfa_gate": false, "rfa_sigma": 1.5, "feature_count": 128})",
       .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "rfa", "feature_count": 256})",
       .mixer = factory(nn::FeatureMapKind::rfa),
       .chunk = 4,
       .learn_steps = 2000,
       .learn_lr = 3e-3,
       .learn_reason = "random features: the copy read-out sharpens slowly; at lr 1e-2 the outcome depended on "
                       "the seed and the CPU, and at 1000 steps on the GEMMs' rounding (0.15-1.00 over seeds 0-2); "
                       "at 2000 steps seeds 0-2 reach 1.00"});
}

void register_rebased(nn::Registry& r) {
  r.add({.id = "rebased",
         .summary = "ReBased: (gamma LN(x) + beta)^2 quadratic kernel, non-negative, as linear attention",
         .keys = {nn::kLinearChunk, nn::kLinearForm},
         .test_config = R"({"mixer": "rebased", "linear_chunk": 4, "heads": 2})",
         .example = R"({"dim": 256, "depth": 4, "heads": 16, "mixer": "rebased"})",
         .mixer = factory(nn::FeatureMapKind::rebased),
         .chunk = 4});
}

void register_hedgehog(nn::Registry& r) {
  r.add({.id = "hedgehog",
         .summary =
             "Hedgehog: learned [softmax(Wx + b), softmax(-Wx - b)] features that mimic softmax, as linear attention",
         .keys = {nn::kLinearChunk, nn::kLinearForm},
         .test_config = R"({"mixer": "hedgehog", "linear_chunk": 4, "heads": 1})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "hedgehog"})",
         .mixer = factory(nn::FeatureMapKind::hedgehog),
         .chunk = 4});
}

void register_polysketchformer(nn::Registry& r) {
  r.add({.id = "polysketchformer",
         .summary = "PolySketchFormer: (q.k)^p through a sketch of x^(p/2), squared so weights stay >= 0",
         .keys = {nn::kPolyDegree, nn::kPolySize, nn::kLinearChunk, nn::kLinearForm},
         .test_config = R"({"mixer": "polysketchformer", "linear_chunk": 4, "heads": 2, "polysketch_size": 8})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "polysketchformer"})",
         .mixer = factory(nn::FeatureMapKind::polysketch),
         .chunk = 4});
}

void register_dijiang(nn::Registry& r) {
  r.add({.id = "dijiang",
         .summary = "DiJiang: positive features on DCT frequencies with quasi-Monte-Carlo lengths, learned weights",
         .keys = {nn::kFeatureCount, nn::kLinearChunk, nn::kLinearForm},
         .test_config = R"({"mixer": "dijiang", "linear_chunk": 4, "heads": 1, "feature_count": 128})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "dijiang", "feature_count": 256})",
         .mixer = factory(nn::FeatureMapKind::dijiang),
         .chunk = 4});
}

inline const nn::Key<double> kPermuteDecay{"permute_decay", 1.0,
                                           "r in (0, 1]: PermuteFormer's decay r^(i - j) of the scores"};

void register_permuteformer(nn::Registry& r) {
  r.add({.id = "permuteformer",
         .summary = "PermuteFormer: features permuted by P^i at position i, so scores depend on i - j only",
         .keys = {kPermuteDecay},
         .test_config = R"({"pos": "permuteformer", "mixer": "performer", "linear_chunk": 4, "heads": 1,
                            "feature_redraw": 0})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "performer", "pos": "permuteformer"})",
         .position =
             [](const nn::ModelDims&, const nn::Config& c, Generator&) {
               const double decay = c.get(kPermuteDecay);
               TZ_CHECK(decay > 0 && decay <= 1, "permuteformer: permute_decay must be in (0, 1], got ", decay);
               return std::make_shared<nn::PermutePositions>(decay);
             },
         .chunk = 4});
}

void register_translational_equivariant_performer(nn::Registry& r) {
  r.add({.id = "translational_equivariant_performer",
         .summary = "Performer with sinusoid parts of q, k under a constrained projection: scores depend on i - j",
         .keys = {kTepPairs},
         .test_config = R"({"pos": "translational_equivariant_performer", "mixer": "performer", "linear_chunk": 4,
                            "heads": 1, "feature_redraw": 0, "feature_count": 128, "tep_pairs": 8})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "performer",
                        "pos": "translational_equivariant_performer"})",
         .position =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               return std::make_shared<nn::RelativeSinusoids>(d.heads, c.get(kTepPairs), gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
