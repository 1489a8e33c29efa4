#include "nn/position/alibi.h"

#include <cmath>

#include "core/creation.h"
#include "nn/registry.h"

namespace tz::nn {

namespace {
// The slopes of n heads when n is a power of two: start^1, start^2, ..., start = 2^(-8/n).
std::vector<double> power_of_two_slopes(int64_t n) {
  std::vector<double> s;
  for (int64_t h = 1; h <= n; ++h) s.push_back(std::pow(2.0, -8.0 * double(h) / double(n)));
  return s;
}
}  // namespace

std::vector<double> alibi_slopes(int64_t heads) {
  TZ_CHECK(heads > 0, "alibi: heads must be positive, got ", heads);
  int64_t n = 1;
  while (n * 2 <= heads) n *= 2;  // largest power of two <= heads
  std::vector<double> s = power_of_two_slopes(n);
  std::vector<double> twice = power_of_two_slopes(2 * n);
  for (int64_t i = 0; int64_t(s.size()) < heads; i += 2) s.push_back(twice[size_t(i)]);  // odd h of 2n
  return s;
}

ALiBiPositions::ALiBiPositions(int64_t heads_, int64_t biased) : heads(heads_), biased_heads(biased) {
  TZ_CHECK(biased >= 1 && biased <= heads, "alibi: 'alibi_num_heads' must be in 1..heads (", heads, "), got ", biased);
  slopes = alibi_slopes(biased);
  slopes.resize(size_t(heads), 0.0);
}

Tensor ALiBiPositions::score_bias(int64_t H, int64_t q_offset, int64_t T, int64_t S, DType dtype,
                                  const MixerContext*) const {
  TZ_CHECK(H == heads, "alibi: built for ", heads, " heads, attention has ", H);
  const int64_t M = T + S - 1;
  Tensor b = empty({H, M}, DType::f64);
  double* p = b.data<double>();
  for (int64_t h = 0; h < H; ++h)
    for (int64_t c = 0; c < M; ++c)  // column c: distance q_offset + c - (S - 1)
      p[h * M + c] = -slopes[size_t(h)] * std::abs(double(q_offset + c - (S - 1)));
  return dtype == DType::f64 ? b : b.to(dtype);
}

std::string ALiBiPositions::describe() const {
  return cat_str("ALiBiPositions(heads=", heads, ", biased_heads=", biased_heads, ")");
}

}  // namespace tz::nn

namespace tz::zoo {

namespace {
const nn::Key<int64_t> kAlibiHeads{"alibi_num_heads", 0,
                                   "how many heads (the first ones) get a bias, 0 = all; the rest see no positions"};
}  // namespace

void register_alibi(nn::Registry& r) {
  r.add({.id = "alibi",
         .summary = "Linear distance penalties -m_h (i - j) on the scores, geometric slopes per head; no embeddings",
         .keys = {kAlibiHeads},
         // 4 heads: with the base config's 2, the slopes are 1/16 and 1/256 and barely bias at all
         // (the paper's models have 8 or more heads, slopes from 1/2 down).
         .test_config = R"({"pos": "alibi", "heads": 4})",
         .example = R"({"pos": "alibi", "heads": 8, "alibi_num_heads": 4})",
         .position =
             [](const nn::ModelDims& d, const nn::Config& c, Generator&) {
               const int64_t biased = c.get(kAlibiHeads);
               return std::make_shared<nn::ALiBiPositions>(d.heads, biased == 0 ? d.heads : biased);
             },
         .learn_steps = 3000,
         .learn_reason = "only a monotone distance penalty: reading the token at a fixed offset is learnt slowly "
                         "(0.70 after 1000 steps, 0.95 after 3000)"});
}

}  // namespace tz::zoo
