// Proof of kNN-LM (models/knn_lm.h): the mixture, the search, and what a datastore buys.
#include <cmath>

#include "autograd/ops.h"
#include "core/creation.h"
#include "data/grammar.h"
#include "models/knn_lm.h"
#include "models/zoo.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"

using namespace tz;

namespace {
std::shared_ptr<models::LM> tiny_lm() {
  Generator gen(4);
  auto m = std::dynamic_pointer_cast<models::LM>(
      zoo::make_model(nn::Config::parse(R"({"vocab": 256, "dim": 16, "depth": 2, "heads": 2, "context": 32})"), gen));
  REQUIRE(m != nullptr);
  m->eval();
  return m;
}
std::vector<int64_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
}  // namespace

TZ_PROOF(knn_lm,
         "lambda 0 is the LM, the mixture sums to 1, the inverted-file index with every list == exhaustive "
         "search, a datastore holding the test text lowers its loss") {
  auto lm = tiny_lm();
  const std::vector<int64_t> train = bytes(data::grammar_text(1200, 1)), test = bytes(data::grammar_text(300, 2));
  int64_t windows = 0;
  models::KnnDatastore store = models::KnnDatastore::build(*lm, train, 32, [&](int64_t, int64_t) { ++windows; });
  CHECK(windows == (int64_t(train.size()) - 1 + 31) / 32);
  CHECK(store.size() == int64_t(train.size()) - 1);
  CHECK(store.dim == 16);
  // 1. lambda = 0 is the LM; every mixture is a distribution.
  NoGradGuard no_grad;
  Tensor features;
  lm->feature_tap = [&](const Tensor& x) { features = x.select(0, 0); };
  std::vector<int64_t> ids(test.begin(), test.begin() + 32);
  Tensor logits = lm->forward({from_vector(ids, {1, 32})}).select(0, 0);
  lm->feature_tap = nullptr;
  Tensor plain = log_softmax(logits.to(DType::f64));
  CHECK(tz::testing::max_abs_diff(models::knn_log_probs(logits, features, store, {.lambda = 0}), plain) == 0.0);
  double worst_sum = 0;
  for (double lambda : {0.25, 1.0}) {
    Tensor mixed = models::knn_log_probs(logits, features, store, {.k = 8, .lambda = lambda});
    worst_sum = std::max(worst_sum, tz::testing::max_abs_diff(sum(exp(mixed), {1}), ones({32}, DType::f64)));
  }
  CHECK(worst_sum <= 1e-12);
  // 2. The index: with every list probed it finds exactly what exhaustive search finds.
  store.build_index(16, 8, 3);
  const Tensor f = features.to(DType::f32).contiguous();
  double recall1 = 0;
  for (int64_t t = 0; t < 32; ++t) {
    const float* q = f.data<float>() + t * 16;
    const auto exact = store.search(q, 8), all = store.search_index(q, 8, 16), one = store.search_index(q, 8, 1);
    REQUIRE(all.size() == exact.size());
    for (size_t i = 0; i < exact.size(); ++i) {
      CHECK(all[i].index == exact[i].index);
      CHECK(all[i].distance == exact[i].distance);
    }
    for (const auto& n : one)
      for (const auto& e : exact) recall1 += double(n.index == e.index) / (32.0 * 8.0);
  }
  MESSAGE("kNN-LM index: 16 lists, recall@8 with 1 list probed ", recall1);
  // 3. The datastore holding the test text itself: each context finds its own continuation at
  // distance 0, and the loss falls; a datastore of other text of the same grammar helps less.
  models::KnnDatastore own = models::KnnDatastore::build(*lm, test, 32);
  const models::KnnOptions o{.k = 8, .lambda = 0.25};
  const models::KnnEvaluation with_own = models::knn_evaluate(*lm, test, 32, own, o),
                              with_train = models::knn_evaluate(*lm, test, 32, store, o);
  MESSAGE("kNN-LM test loss (nats/byte): LM ", with_own.lm_nll, ", + datastore of other text ", with_train.knn_nll,
          ", + datastore holding the test text ", with_own.knn_nll);
  CHECK(with_own.tokens == int64_t(test.size()) - 1);
  CHECK(with_own.knn_nll < with_own.lm_nll - 1.0);
  CHECK(with_own.knn_nll < with_train.knn_nll);
  // Bad options are named.
  CHECK_THROWS_WITH_AS(models::knn_log_probs(logits, features, store, {.lambda = 1.5}),
                       doctest::Contains("lambda must be in [0, 1]"), tz::Error);
  CHECK_THROWS_WITH_AS(store.search_index(f.data<float>(), 8, 17), doctest::Contains("nprobe must be in [1, 16]"),
                       tz::Error);
  TZ_PROOF_NUMBER("loss drop with own text (nats)", with_own.lm_nll - with_own.knn_nll);
}
