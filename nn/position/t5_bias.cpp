#include "nn/position/t5_bias.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "nn/position/common.h"
#include "nn/registry.h"

namespace tz::nn {

int64_t t5_bucket(int64_t r, bool bidirectional, int64_t num_buckets, int64_t max_distance) {
  int64_t bucket = 0;
  int64_t n = -r;  // i - j: how far back the key is
  if (bidirectional) {
    num_buckets /= 2;
    if (n < 0) bucket += num_buckets;  // keys after the query: upper half
    n = std::abs(n);
  } else {
    n = std::max<int64_t>(n, 0);
  }
  const int64_t exact = num_buckets / 2;
  if (n < exact) return bucket + n;
  const double frac = std::log(double(n) / double(exact)) / std::log(double(max_distance) / double(exact));
  const int64_t large = exact + int64_t(frac * double(num_buckets - exact));  // floor (n >= exact)
  return bucket + std::min(large, num_buckets - 1);
}

T5RelativeBias::T5RelativeBias(const T5BiasOptions& o, Generator& gen) : options(o) {
  TZ_CHECK(o.num_buckets >= (o.bidirectional ? 4 : 2), "t5_rel_bias: 'rel_pos_num_buckets' must be at least ",
           o.bidirectional ? 4 : 2, ", got ", o.num_buckets);
  TZ_CHECK(o.max_distance > o.num_buckets / (o.bidirectional ? 4 : 2),
           "t5_rel_bias: 'rel_pos_max_distance' must exceed the exact range (",
           o.num_buckets / (o.bidirectional ? 4 : 2), "), got ", o.max_distance);
  table = register_module("table",
                          std::make_shared<Embedding>(EmbeddingOptions{.num = o.num_buckets, .dim = o.heads}, gen));
}

Tensor T5RelativeBias::compute(int64_t q_start, int64_t T, int64_t S, DType) const {
  ++computations;
  std::vector<int64_t> idx(size_t(T * S));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j)
      idx[size_t(i * S + j)] =
          t5_bucket(j - (q_start + i), options.bidirectional, options.num_buckets, options.max_distance);
  Tensor b = table->forward(from_vector(idx, {T, S}));  // [T, S, H]
  return b.permute({2, 0, 1});                          // [H, T, S]
}

Tensor T5RelativeBias::table_bias(int64_t q_offset, int64_t T, int64_t S) const {
  ++computations;
  const int64_t M = T + S - 1;
  std::vector<int64_t> idx(static_cast<size_t>(M));
  for (int64_t c = 0; c < M; ++c)  // column c: key minus query = (S - 1) - c - q_offset
    idx[size_t(c)] = t5_bucket(S - 1 - c - q_offset, options.bidirectional, options.num_buckets, options.max_distance);
  return table->forward(from_vector(idx)).t();  // [M, H] -> [H, M]
}

Tensor T5RelativeBias::score_bias(int64_t H, int64_t q_offset, int64_t T, int64_t S, DType dtype,
                                  const MixerContext* ctx) const {
  TZ_CHECK(H == options.heads, "t5_rel_bias: built for ", options.heads, " heads, attention has ", H);
  return carry_once(ctx, cat_str("t5_rel_bias ", q_offset, " ", T, " ", S, " ", dtype_name(dtype)),
                    [&] { return table_bias(q_offset, T, S); });
}

std::string T5RelativeBias::describe() const {
  return cat_str("T5RelativeBias(heads=", options.heads, ", buckets=", options.num_buckets,
                 ", max_distance=", options.max_distance, options.bidirectional ? ", bidirectional" : ", causal", ")");
}

}  // namespace tz::nn

namespace tz::zoo {

namespace {
const nn::Key<int64_t> kBuckets{"rel_pos_num_buckets", 32, "number of distance buckets"};
const nn::Key<int64_t> kMaxDistance{"rel_pos_max_distance", 128, "distances beyond this share the last bucket"};
const nn::Key<bool> kBidirectional{"rel_pos_bidirectional", false,
                                   "split buckets by sign (encoders); false for decoders"};
}  // namespace

void register_t5_rel_bias(nn::Registry& r) {
  r.add({.id = "t5_rel_bias",
         .summary = "Learned per-head bias on log-spaced relative-distance buckets, one table shared by all layers",
         .keys = {kBuckets, kMaxDistance, kBidirectional},
         .test_config = R"({"pos": "t5_rel_bias"})",
         .example = R"({"pos": "t5_rel_bias", "rel_pos_num_buckets": 32, "rel_pos_max_distance": 128})",
         .position = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           return std::make_shared<nn::T5RelativeBias>(nn::T5BiasOptions{.heads = d.heads,
                                                                         .num_buckets = c.get(kBuckets),
                                                                         .max_distance = c.get(kMaxDistance),
                                                                         .bidirectional = c.get(kBidirectional)},
                                                       gen);
         }});
}

}  // namespace tz::zoo
