// Data parallelism in one process (train/distributed.h over the SoloCommunicator): K shards
// computed one after the other give the mean of their gradients, bit for bit in the
// deterministic mode (the fold the MPI ranks share, tests/mpi/), to f32 rounding in the fast
// one (gradients accumulated by autograd); the errors for shard and rank counts that do not
// fit; autograd's LeafGradHook reports each leaf once, after its last contribution.
#include <algorithm>
#include <memory>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "tests/test_util.h"
#include "tests/train/data_parallel_toy.h"
#include "train/distributed.h"

using namespace tz;
using testing::max_abs_diff;
using testing::rel_rms;

TEST_CASE("data parallel in one process: K shards give the mean of their gradients") {
  for (bool deterministic : {false, true})
    for (int64_t K : {1, 2, 4}) {
      INFO(cat_str("K ", K, deterministic ? ", deterministic" : ", fast"));
      testing::Toy toy;
      double ref_loss = 0;
      const std::vector<Tensor> ref = testing::reference(toy, K, ref_loss);
      train::DataParallel dp(toy.params, std::make_shared<SoloCommunicator>(),
                             {.shards = K, .deterministic = deterministic, .bucket_mb = 0.002});
      CHECK(dp.local_shards() == K);
      CHECK(!dp.overlaps());  // nothing to overlap with: one process
      const double loss = dp.loss_and_grads([&](int64_t k) { return toy.loss(k, K); });
      CHECK(loss == ref_loss);
      for (size_t i = 0; i < ref.size(); ++i) {
        INFO(cat_str("parameter ", toy.params[i].first));
        const Tensor g = toy.p(i).grad();
        if (toy.params[i].first == "unused" || (toy.params[i].first == "odd" && K == 1)) {
          CHECK(!g.defined());
          continue;
        }
        REQUIRE(g.defined());
        if (deterministic)
          CHECK(max_abs_diff(g, ref[i]) == 0);
        else
          CHECK(rel_rms(g, ref[i]) < 1e-6);
      }
      CHECK(dp.stats().early_buckets >= 1);  // some buckets were final before backward returned
    }
}

TEST_CASE("data parallel: shard and rank counts that do not fit are refused with the ones that do") {
  CHECK_THROWS_WITH_AS(
      train::check_shards(8, 3, 1),
      "train: the batch of 8 rows cannot be cut into 3 equal shards (--shards; by default one per rank); "
      "shards must divide it: 1, 2, 4, 8",
      Error);
  CHECK_THROWS_WITH_AS(train::check_shards(8, 4, 3),
                       doctest::Contains("3 ranks cannot share the run's 4 shards of the batch; run it on a number of "
                                         "ranks that divides 4: 1, 2, 4"),
                       Error);
  CHECK_NOTHROW(train::check_shards(8, 4, 2));
}

TEST_CASE("LeafGradHook: each leaf once, after its last contribution, while backward runs") {
  Tensor a = full({3}, 2.0).requires_grad_(), b = full({3}, 3.0).requires_grad_(), c = full({3}, 5.0).requires_grad_();
  std::vector<std::pair<const AutogradMeta*, double>> seen;  // leaf, its gradient's first element then
  {
    LeafGradHook hook([&](const AutogradMeta* leaf) { seen.emplace_back(leaf, leaf->grad.to_vector<double>()[0]); });
    // a is used three times (its gradient is final only after the last), b once, c twice.
    Tensor y = sum(a * b + a * a + exp(c) * c);
    y.backward();
  }
  REQUIRE(seen.size() == 3);
  auto at = [&](const Tensor& t) {
    return std::find_if(seen.begin(), seen.end(), [&](auto& s) { return s.first == t.impl().autograd.get(); });
  };
  REQUIRE(at(a) != seen.end());
  CHECK(at(a)->second == doctest::Approx(3.0 + 2 * 2.0));  // b + 2a: every contribution in
  CHECK(at(b)->second == doctest::Approx(2.0));
  CHECK(at(c)->second == doctest::Approx(std::exp(5.0) * 6.0));
  // Outside the hook's scope nothing is reported.
  seen.clear();
  a.zero_grad();
  sum(a * a).backward();
  CHECK(seen.empty());
}
