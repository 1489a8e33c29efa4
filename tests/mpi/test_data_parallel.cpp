// Data-parallel gradients across MPI ranks (train/distributed.h): after loss_and_grads every
// rank holds the mean of the K shards' gradients, computed here by one rank alone as the
// reference: bit for bit in the deterministic mode (the same fold order), to f32 rounding in
// the fast one; a parameter no shard touches keeps no gradient; buckets go out during the
// backward pass; a rank whose parameters drift is named.
#include <cmath>
#include <string>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "tests/mpi/world.h"
#include "tests/test_util.h"
#include "tests/train/data_parallel_toy.h"
#include "train/distributed.h"

using namespace tz;
using testing::max_abs_diff;
using testing::rel_rms;
using testing::world;

namespace {
using testing::reference;
using testing::Toy;

void check(int64_t K, bool deterministic, double bucket_mb) {
  Communicator& comm = world();
  INFO(cat_str("ranks ", comm.size(), ", shards ", K, deterministic ? ", deterministic" : ", fast", ", buckets of ",
               bucket_mb, " MB"));
  Toy toy;
  double ref_loss = 0;
  const std::vector<Tensor> ref = reference(toy, K, ref_loss);
  auto shared = std::shared_ptr<Communicator>(&comm, [](Communicator*) {});
  train::DataParallel dp(toy.params, shared, {.shards = K, .deterministic = deterministic, .bucket_mb = bucket_mb});
  const double loss = dp.loss_and_grads([&](int64_t k) { return toy.loss(k, K); });
  if (deterministic) CHECK(loss == ref_loss);
  CHECK(std::abs(loss - ref_loss) <= 1e-12 * std::abs(ref_loss));
  for (size_t i = 0; i < ref.size(); ++i) {
    INFO(cat_str("parameter ", toy.params[i].first));
    const Tensor g = toy.p(i).grad();
    if (toy.params[i].first == "unused") {
      CHECK(!g.defined());
      continue;
    }
    REQUIRE(g.defined());
    if (deterministic)
      CHECK(max_abs_diff(g, ref[i]) == 0);
    else
      CHECK(rel_rms(g, ref[i]) < 1e-6);
  }
  // Every rank holds the same gradients, bit for bit.
  std::vector<Tensor> grads;
  for (size_t i = 0; i + 1 < toy.params.size(); ++i)
    if (toy.p(i).grad().defined()) grads.push_back(toy.p(i).grad());
  CHECK_NOTHROW(dp.check_replicas(grads, "after the reduction"));
  if (bucket_mb < 0.01) {  // many buckets: the late layers' go out while backward runs on
    CHECK(dp.num_buckets() >= 3);
    CHECK(dp.stats().early_buckets >= 1);
    CHECK(dp.overlaps() == (comm.size() > 1 && comm.concurrent_calls()));
  }
}
}  // namespace

TEST_CASE("data parallel: every rank gets the shards' mean gradient (fast and deterministic)") {
  const int64_t N = world().size();
  for (bool deterministic : {false, true})
    for (int64_t K : {N, 2 * N})
      for (double mb : {4.0, 0.002}) check(K, deterministic, mb);
}

TEST_CASE("data parallel: a rank whose parameters differ is named") {
  Communicator& comm = world();
  Toy toy;
  auto shared = std::shared_ptr<Communicator>(&comm, [](Communicator*) {});
  train::DataParallel dp(toy.params, shared, {.shards = comm.size()});
  std::vector<Tensor> params;
  for (auto& [n, p] : toy.params) params.push_back(p);
  CHECK_NOTHROW(dp.check_replicas(params, "at the start"));
  const int bad = comm.size() - 1;
  if (comm.rank() == bad) {
    NoGradGuard no_grad;
    float* w = static_cast<float*>(toy.p(1).raw_data());
    w[7] = std::nextafter(w[7], 1e30f);  // one bit
  }
  const std::string expected = cat_str("rank ", bad, "'s parameters differ from rank 0's after step 3");
  CHECK_THROWS_WITH_AS(dp.check_replicas(params, "after step 3"), doctest::Contains(expected.c_str()), Error);
  // broadcast puts rank 0's back.
  dp.broadcast(params);
  CHECK_NOTHROW(dp.check_replicas(params, "after the broadcast"));
}
