// MoA's elastic per-head windows and their profile: see moa.h.
#include "nn/sparse_attention/moa.h"

#include <algorithm>
#include <cmath>

#include "nn/registry.h"

namespace tz::nn {

int64_t MoaRule::span(int64_t N) const { return std::max<int64_t>(1, int64_t(std::floor(alpha + beta * double(N)))); }

kernels::SparsePattern moa_pattern(std::vector<MoaRule> rules, int64_t g) {
  TZ_CHECK(!rules.empty() && g >= 0, "moa: expected moa_alpha, moa_beta and moa_initial >= 0, got ", rules.size(),
           " rules and ", g, " initial tokens");
  std::string name = cat_str("moa(g=", g);
  for (const MoaRule& r : rules) name += cat_str(", ", r.alpha, "+", r.beta, "N");
  name += ")";
  return {name, 0, [rules = std::move(rules), g](int64_t h, int64_t p, int64_t j) {
            return j < g || p - j < rules[size_t(h) % rules.size()].span(p + 1);
          }};
}

MoaProfile moa_profile(const std::vector<std::vector<double>>& probs, int64_t N, const std::vector<MoaRule>& candidates,
                       int64_t g, double budget) {
  TZ_CHECK(!candidates.empty(), "moa_profile: no candidate rules");
  const int64_t H = int64_t(probs.size());
  const double pairs = double(N) * double(N + 1) / 2;
  // mass[h][c], dens[h][c]: retained mass and density of candidate c on head h.
  std::vector<std::vector<double>> mass(static_cast<size_t>(H)), dens(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) {
    TZ_CHECK(int64_t(probs[size_t(h)].size()) == N * N, "moa_profile: expected [", N, ", ", N, "] probabilities");
    for (size_t c = 0; c < candidates.size(); ++c) {
      const auto vis = moa_pattern(std::vector<MoaRule>{candidates[c]}, g).visible;
      double m = 0, d = 0;
      for (int64_t p = 0; p < N; ++p)
        for (int64_t j = 0; j <= p; ++j)
          if (vis(0, p, j)) m += probs[size_t(h)][size_t(p * N + j)], d += 1;
      mass[size_t(h)].push_back(m / double(N));
      dens[size_t(h)].push_back(d / pairs);
    }
  }
  // Greedy: every head at its cheapest candidate, then the best mass gain per density spent.
  std::vector<size_t> pick(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h)
    pick[size_t(h)] =
        size_t(std::min_element(dens[size_t(h)].begin(), dens[size_t(h)].end()) - dens[size_t(h)].begin());
  auto used = [&] {
    double s = 0;
    for (int64_t h = 0; h < H; ++h) s += dens[size_t(h)][pick[size_t(h)]];
    return s / double(H);
  };
  for (;;) {
    double best = 0;
    int64_t bh = -1;
    size_t bc = 0;
    for (int64_t h = 0; h < H; ++h)
      for (size_t c = 0; c < candidates.size(); ++c) {
        const double dm = mass[size_t(h)][c] - mass[size_t(h)][pick[size_t(h)]],
                     dd = dens[size_t(h)][c] - dens[size_t(h)][pick[size_t(h)]];
        if (dm <= 0 || dd <= 0 || used() + dd / double(H) > budget + 1e-12) continue;
        if (dm / dd > best) best = dm / dd, bh = h, bc = c;
      }
    if (bh < 0) break;
    pick[size_t(bh)] = bc;
  }
  MoaProfile out;
  for (int64_t h = 0; h < H; ++h) {
    out.rules.push_back(candidates[pick[size_t(h)]]);
    out.retained.push_back(mass[size_t(h)][pick[size_t(h)]]);
    out.density.push_back(dens[size_t(h)][pick[size_t(h)]]);
  }
  return out;
}

}  // namespace tz::nn

namespace tz::zoo {

void register_moa(nn::Registry& r) {
  r.add({.id = "moa",
         .summary = "MoA: per-head elastic windows S_h(N) = alpha_h + beta_h N plus initial tokens, from a profile",
         .keys = {nn::kMoaAlpha, nn::kMoaBeta, nn::kMoaInitial},
         .test_config = R"({"mixer": "moa", "moa_alpha": [2, 4], "moa_beta": [0.25, 0.5], "moa_initial": 1})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "moa", "moa_alpha": [64, 128, 32, 256], )"
                    R"("moa_beta": [0.1, 0.25, 0.5, 0], "moa_initial": 4})",
         .mixer =
             [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
               nn::check_causal_self("moa", d.causal, d.context_dim);
               const std::vector<double> a = c.get(nn::kMoaAlpha), b = c.get(nn::kMoaBeta);
               TZ_CHECK(!a.empty() && a.size() == b.size(),
                        "moa: moa_alpha and moa_beta must have the same length >= 1, got ", a.size(), " and ",
                        b.size());
               std::vector<nn::MoaRule> rules;
               for (size_t i = 0; i < a.size(); ++i) rules.push_back({.alpha = a[i], .beta = b[i]});
               kernels::SparsePattern p = nn::moa_pattern(rules, c.get(nn::kMoaInitial));
               return std::make_shared<nn::SparseAttention>(
                   nn::SparseAttentionOptions{
                       .dim = d.dim, .heads = d.heads, .name = p.name, .attend = nn::attend_pattern(p)},
                   gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
