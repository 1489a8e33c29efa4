// MoA's elastic per-head windows, their influence profile and plan: see moa.h.
#include "nn/sparse_attention/moa.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/creation.h"
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

// What the layer's attend closure and the layer share: the rules (replaceable) and the probe.
struct MoaAttention::Shared {
  std::vector<MoaRule> rules;
  int64_t g = 0;
  kernels::SparsePattern pattern;
  std::shared_ptr<kernels::LayoutCache> cache;
  bool profiling = false;
  Tensor q, k, v, tap;  // the last profiled forward
  void set(std::vector<MoaRule> r) {
    rules = std::move(r);
    pattern = moa_pattern(rules, g);
    cache = std::make_shared<kernels::LayoutCache>(pattern);
  }
};

MoaAttention::MoaAttention(int64_t dim, int64_t heads, std::vector<MoaRule> rules, int64_t g, Generator& gen)
    : SparseAttention({.dim = dim, .heads = heads, .name = "moa", .attend = [](auto&&...) { return Tensor(); }}, gen),
      s_(std::make_shared<Shared>()) {
  s_->g = g;
  set_rules(std::move(rules));
  options.attend = [s = s_](const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset) {
    Tensor o = attend_masked(q, k, v, q_offset, s->cache->get(q.size(1), k.size(2)));
    if (!s->profiling) return o;
    s->q = q.detach(), s->k = k.detach(), s->v = v.detach();
    s->tap = zeros_like(o).requires_grad_();
    return o + s->tap;
  };
}

const std::vector<MoaRule>& MoaAttention::rules() const { return s_->rules; }
int64_t MoaAttention::initial() const { return s_->g; }

void MoaAttention::set_rules(std::vector<MoaRule> rules) {
  TZ_CHECK(int64_t(rules.size()) == options.heads, "moa: expected one rule per head (", options.heads, "), got ",
           rules.size());
  s_->set(std::move(rules));
  options.name = s_->pattern.name;
}

void MoaAttention::set_profiling(bool on) {
  s_->profiling = on;
  if (!on) s_->q = s_->k = s_->v = s_->tap = Tensor();
}

std::vector<std::vector<double>> MoaAttention::influence() const {
  const Shared& s = *s_;
  TZ_CHECK(s.tap.defined() && s.tap.grad().defined(), "moa: influence() needs a profiled forward and its backward");
  const int64_t B = s.q.size(0), H = s.q.size(1), T = s.q.size(2), D = s.q.size(3);
  TZ_CHECK(s.k.size(2) == T, "moa: influence() reads the training form (no cache), got T ", T, ", S ", s.k.size(2));
  const std::vector<double> q = s.q.contiguous().to_vector<double>(), k = s.k.contiguous().to_vector<double>(),
                            v = s.v.contiguous().to_vector<double>(),
                            dO = s.tap.grad().contiguous().to_vector<double>();
  const double scale = 1.0 / std::sqrt(double(D));
  std::vector<std::vector<double>> E(size_t(H), std::vector<double>(size_t(T * T), 0.0));
  std::vector<double> a(static_cast<size_t>(T)), o(static_cast<size_t>(D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      auto row = [&](const std::vector<double>& t, int64_t i) { return &t[size_t(((b * H + h) * T + i) * D)]; };
      for (int64_t p = 0; p < T; ++p) {
        // A_p over the visible keys (softmax with the max subtracted), O_p, dO_p . O_p.
        double mx = -std::numeric_limits<double>::infinity(), z = 0;
        for (int64_t j = 0; j <= p; ++j) {
          a[size_t(j)] = -std::numeric_limits<double>::infinity();
          if (!s.pattern.visible(h, p, j)) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += row(q, p)[d] * row(k, j)[d];
          a[size_t(j)] = dot * scale;
          mx = std::max(mx, a[size_t(j)]);
        }
        for (int64_t j = 0; j <= p; ++j) z += a[size_t(j)] = std::exp(a[size_t(j)] - mx);
        std::fill(o.begin(), o.end(), 0.0);
        for (int64_t j = 0; j <= p; ++j) {
          a[size_t(j)] /= z;
          for (int64_t d = 0; d < D; ++d) o[size_t(d)] += a[size_t(j)] * row(v, j)[d];
        }
        double s_p = 0;
        for (int64_t d = 0; d < D; ++d) s_p += row(dO, p)[d] * o[size_t(d)];
        for (int64_t j = 0; j <= p; ++j) {
          if (a[size_t(j)] == 0) continue;
          double g = 0;  // dL/dA_pj
          for (int64_t d = 0; d < D; ++d) g += row(dO, p)[d] * row(v, j)[d];
          // 1 - A -> 0 only for a lone key, which every rule keeps (span >= 1).
          E[size_t(h)][size_t(p * T + j)] -= a[size_t(j)] * (g - s_p) / std::max(1 - a[size_t(j)], 1e-12);
        }
      }
    }
  return E;
}

int64_t moa_kept(int64_t N, const MoaRule& rule, int64_t g) {
  int64_t kept = 0;
  for (int64_t p = 0; p < N; ++p) {
    const int64_t span = rule.span(p + 1);
    // The window j in (p - span, p], then the initial tokens j < g before it.
    kept += std::min(span, p + 1) + std::max<int64_t>(0, std::min(g, p + 1 - span));
  }
  return kept;
}

double moa_hidden_sum(const std::vector<double>& M, int64_t N, const MoaRule& rule, int64_t g) {
  TZ_CHECK(int64_t(M.size()) == N * N, "moa: expected an [", N, ", ", N, "] matrix, got ", M.size(), " values");
  double s = 0;
  for (int64_t p = 0; p < N; ++p)
    for (int64_t j = g; j <= p - rule.span(p + 1); ++j) s += M[size_t(p * N + j)];
  return s;
}

double MoaPlan::mean_density() const {
  double s = 0;
  for (double d : density) s += d;
  return density.empty() ? 0 : s / double(density.size());
}

MoaPlan moa_plan(const std::vector<std::vector<double>>& M, int64_t N, const std::vector<MoaRule>& candidates,
                 int64_t g, double budget) {
  TZ_CHECK(!candidates.empty() && !M.empty() && N >= 1, "moa_plan: expected heads, candidates and N >= 1");
  const size_t H = M.size(), C = candidates.size();
  const int64_t pairs = N * (N + 1) / 2, total = pairs * int64_t(H);
  const int64_t unit = std::max<int64_t>(1, (total + 65535) / 65536);
  const int64_t cap = int64_t(std::floor(budget * double(total) + 1e-9)) / unit;
  std::vector<int64_t> kept(C), w(C);
  for (size_t c = 0; c < C; ++c) kept[c] = moa_kept(N, candidates[c], g), w[c] = (kept[c] + unit - 1) / unit;
  std::vector<std::vector<double>> cost(H, std::vector<double>(C));
  for (size_t h = 0; h < H; ++h)
    for (size_t c = 0; c < C; ++c) cost[h][c] = moa_hidden_sum(M[h], N, candidates[c], g);
  // best[h][x]: least cost of heads 0..h within weight x; pick[h][x] the candidate of head h.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> prev(size_t(cap + 1), 0.0), cur(size_t(cap + 1));
  std::vector<std::vector<int32_t>> pick(H, std::vector<int32_t>(size_t(cap + 1), -1));
  for (size_t h = 0; h < H; ++h) {
    std::fill(cur.begin(), cur.end(), inf);
    for (int64_t x = 0; x <= cap; ++x)
      for (size_t c = 0; c < C; ++c)
        if (w[c] <= x && prev[size_t(x - w[c])] + cost[h][c] < cur[size_t(x)])
          cur[size_t(x)] = prev[size_t(x - w[c])] + cost[h][c], pick[h][size_t(x)] = int32_t(c);
    prev.swap(cur);
  }
  TZ_CHECK(prev[size_t(cap)] < inf, "moa_plan: no candidate set fits the density budget ", budget,
           " (the sparsest "
           "candidate keeps ",
           double(*std::min_element(kept.begin(), kept.end())) / double(pairs), ")");
  MoaPlan plan;
  plan.rules.resize(H), plan.cost.resize(H), plan.density.resize(H);
  for (size_t h = H, x = size_t(cap); h-- > 0;) {
    const size_t c = size_t(pick[h][x]);
    plan.rules[h] = candidates[c], plan.cost[h] = cost[h][c], plan.density[h] = double(kept[c]) / double(pairs);
    x -= size_t(w[c]);
  }
  return plan;
}

namespace {
void collect_moa(const Module& m, std::vector<std::shared_ptr<MoaAttention>>& out) {
  for (const auto& [name, child] : m.named_children()) {
    if (auto a = std::dynamic_pointer_cast<MoaAttention>(child)) out.push_back(a);
    collect_moa(*child, out);
  }
}
}  // namespace

std::vector<std::shared_ptr<MoaAttention>> moa_layers(const Module& model) {
  std::vector<std::shared_ptr<MoaAttention>> out;
  collect_moa(model, out);
  return out;
}

std::vector<std::vector<double>> moa_profile(Module& model, const std::function<Tensor(int64_t)>& loss,
                                             int64_t batches) {
  const auto layers = moa_layers(model);
  TZ_CHECK(!layers.empty() && batches >= 1, "moa_profile: expected a model with MoA layers and batches >= 1, got ",
           layers.size(), " layers and ", batches, " batches");
  std::vector<std::vector<double>> mean;
  for (const auto& l : layers) l->set_profiling(true);
  for (int64_t b = 0; b < batches; ++b) {
    loss(b).backward();
    size_t at = 0;
    for (const auto& l : layers)
      for (auto& head : l->influence()) {
        if (mean.size() <= at) mean.emplace_back(head.size(), 0.0);
        for (size_t i = 0; i < head.size(); ++i) mean[at][i] += head[i] / double(batches);
        ++at;
      }
    model.zero_grad();
  }
  for (const auto& l : layers) l->set_profiling(false);
  return mean;
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
               const int64_t H = d.heads, n = int64_t(a.size());
               TZ_CHECK(n >= 1 && a.size() == b.size() && (n <= H || n == d.depth * H),
                        "moa: moa_alpha and moa_beta must have the same length, at most heads (", H,
                        ") or depth x heads (", d.depth * H, "), got ", a.size(), " and ", b.size());
               // Layer-major per-layer rules, or the per-head ones cycled.
               const bool per_layer = n > H && n == d.depth * H;
               std::vector<nn::MoaRule> rules;
               for (int64_t h = 0; h < H; ++h) {
                 const size_t i = size_t(per_layer ? d.layer * H + h : h % n);
                 rules.push_back({.alpha = a[i], .beta = b[i]});
               }
               return std::make_shared<nn::MoaAttention>(d.dim, H, rules, c.get(nn::kMoaInitial), gen);
             },
         .chunk = 4});
}

}  // namespace tz::zoo
