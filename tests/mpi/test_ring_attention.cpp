// Sequence-parallel Ring attention across MPI ranks (nn/sparse_attention/ring_attention.h):
// rank r holds block r of the sequence; outputs and gradients (f64) equal single-process
// causal attention over the whole sequence, on every rank's rows. CTest runs this suite on
// 2 and on 4 ranks.
#include <algorithm>
#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/random.h"
#include "nn/sparse_attention/ring_attention.h"
#include "tests/mpi/world.h"
#include "tests/test_util.h"

using namespace tz;
using testing::rel_rms;
using testing::world;

namespace {
// Compares rank r's ring attention with the full attention's rows of its block; rank p
// holds length(p) positions.
// Returns the largest relative RMS error over the ranks.
double compare(int64_t B, int64_t H, int64_t G, int64_t D, const std::function<int64_t(int64_t)>& length) {
  Communicator& comm = world();
  const int64_t P = comm.size(), r = comm.rank();
  int64_t S = 0, a = 0;
  for (int64_t p = 0; p < P; ++p) {
    if (p == r) a = S;
    S += length(p);
  }
  const int64_t b = a + length(r);
  Generator gen(17);  // the same full tensors on every rank
  Tensor q = randn({B, H, S, D}, gen, DType::f64), k = randn({B, G, S, D}, gen, DType::f64),
         v = randn({B, G, S, D}, gen, DType::f64), w = randn({B, H, S, D}, gen, DType::f64);
  // Reference: one process, the whole sequence.
  Tensor qf = q.clone().requires_grad_(), kf = k.clone().requires_grad_(), vf = v.clone().requires_grad_();
  Tensor ref = attention(qf, kf, vf, /*causal=*/true);
  sum(ref * w).backward();
  // This rank's block, through the ring.
  auto rows = [&](const Tensor& x) { return x.narrow(2, a, b - a).contiguous(); };
  Tensor qr = rows(q).requires_grad_(), kr = rows(k).requires_grad_(), vr = rows(v).requires_grad_();
  Tensor out = nn::ring_attention(qr, kr, vr, comm);
  sum(out * rows(w)).backward();
  INFO(cat_str("rank ", r, " of ", P, ", positions [", a, ", ", b, ") of ", S));
  const double errors[] = {rel_rms(out, rows(ref.detach())), rel_rms(qr.grad(), rows(qf.grad())),
                           rel_rms(kr.grad(), rows(kf.grad())), rel_rms(vr.grad(), rows(vf.grad()))};
  double worst = 0;
  for (double e : errors) {
    CHECK(e < 1e-12);
    worst = std::max(worst, e);
  }
  std::vector<double> all(static_cast<size_t>(P));
  comm.allgather(&worst, sizeof worst, all.data());
  return *std::max_element(all.begin(), all.end());
}
}  // namespace

TEST_CASE("ring attention over MPI ranks == single-process attention: outputs and gradients (f64)") {
  double worst = compare(2, 2, 2, 5, [](int64_t) { return 4; });                           // equal blocks
  worst = std::max(worst, compare(1, 4, 2, 8, [](int64_t p) { return 2 * p + 1; }));       // uneven, grouped KV heads
  worst = std::max(worst, compare(2, 2, 1, 3, [](int64_t p) { return p == 1 ? 0 : 3; }));  // a rank without positions
  if (world().rank() == 0)
    MESSAGE(cat_str(world().size(), " ranks: largest relative error of outputs and gradients ", worst));
}
