// Ring attention: see ring_attention.h.
#include "nn/sparse_attention/ring_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <thread>

#include "autograd/node.h"
#include "core/attention_partial.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "nn/registry.h"

namespace tz::nn {

RingBlock RingExchange::exchange(int64_t rank, RingBlock block) {
  std::unique_lock<std::mutex> lock(mutex_);
  inbox_[size_t((rank + 1) % P)].push_back(std::move(block));
  cv_.notify_all();
  cv_.wait(lock, [&] { return aborted_ || !inbox_[size_t(rank)].empty(); });
  TZ_CHECK(!aborted_, "ring_attention: worker ", rank, " stopped, another worker failed");
  RingBlock got = std::move(inbox_[size_t(rank)].front());
  inbox_[size_t(rank)].pop_front();
  return got;
}

void RingExchange::abort() {
  std::lock_guard<std::mutex> lock(mutex_);
  aborted_ = true;
  cv_.notify_all();
}

namespace {

// Shard r covers key positions [start[r], start[r + 1]) and local queries [qs[r], qs[r + 1]).
struct Shards {
  std::vector<int64_t> start, qs;
};
Shards shard(int64_t S, int64_t T, int64_t q_offset, int64_t P) {
  Shards s;
  for (int64_t r = 0; r <= P; ++r) s.start.push_back(S * r / P);
  for (int64_t r = 0; r <= P; ++r) s.qs.push_back(std::clamp<int64_t>(s.start[size_t(r)] - q_offset, 0, T));
  return s;
}

// cat along dim 2 of the pieces that hold positions.
Tensor cat_positions(const std::vector<Tensor>& xs) {
  std::vector<Tensor> kept;
  for (const Tensor& x : xs)
    if (x.size(2) > 0) kept.push_back(x);
  return kept.size() == 1 ? kept[0].contiguous() : cat(kept, 2);
}

// Runs worker(rank) on P threads of the ring; rethrows the first error (the others are the
// aborted exchanges it caused).
void run_workers(RingExchange& ring, const std::function<void(int64_t)>& worker) {
  const int64_t P = ring.P;
  std::mutex mutex;
  std::exception_ptr first;
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < P; ++r)
    threads.emplace_back([&, r] {
      try {
        // One thread per worker: a new thread's own OpenMP team would be built on every call.
        set_num_threads(1);
        worker(r);
      } catch (...) {
        {
          std::lock_guard<std::mutex> lock(mutex);
          if (!first) first = std::current_exception();
        }
        ring.abort();
      }
    });
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

// The one worker both rings run: the spec of its queries against shard src's keys (causal,
// at their offset), and the exchange that sends the held block on and returns the next.
struct Worker {
  int64_t rank, P;
  std::function<AttentionSpec(int64_t src)> spec;
  std::function<RingBlock(RingBlock)> pass;
  bool sees(const Tensor& qr, const RingBlock& held) const {
    return held.owner <= rank && qr.size(2) > 0 && held.k.size(2) > 0;  // causal: no later shard
  }
};

// Forward: the parts of qr's attention over every block that comes round, merged.
core::AttentionForward worker_forward(const Worker& w, const Tensor& qr, RingBlock held) {
  std::vector<core::AttentionForward> parts;
  for (int64_t t = 0; t < w.P; ++t) {
    if (w.sees(qr, held)) parts.push_back(core::attention(qr, held.k, held.v, w.spec(held.owner)));
    if (t + 1 < w.P) held = w.pass(std::move(held));
  }
  return parts.empty() ? core::AttentionForward{} : core::attention_merge(parts);
}

// Backward: each block travels with its dK, dV, to which every worker adds its part (the
// fused backward with the merged out, lse); after P exchanges it is home. Returns dQ_r and
// the home block with its full gradients.
std::pair<Tensor, RingBlock> worker_backward(const Worker& w, const Tensor& g, const Tensor& qr, const Tensor& out,
                                             const Tensor& lse, RingBlock held) {
  Tensor dq = zeros_like(qr);
  held.dk = zeros_like(held.k);
  held.dv = zeros_like(held.v);
  for (int64_t t = 0; t < w.P; ++t) {
    if (w.sees(qr, held)) {
      core::AttentionGrads a = core::attention_backward(g, qr, held.k, held.v, out, lse, w.spec(held.owner));
      dq = dq + a.dq;
      held.dk = held.dk + a.dk;
      held.dv = held.dv + a.dv;
    }
    held = w.pass(std::move(held));  // P exchanges: every block comes home
  }
  return {dq, std::move(held)};
}

// The spec of worker r's queries against shard src's keys: causal, at their offset.
AttentionSpec part_spec(const Shards& s, int64_t q_offset, int64_t r, int64_t src) {
  return AttentionSpec{.causal = true, .q_offset = q_offset + s.qs[size_t(r)] - s.start[size_t(src)]};
}

}  // namespace

Tensor ring_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t q_offset, int64_t P) {
  TZ_CHECK(P >= 1, "ring_attention: ring_shards must be >= 1, got ", P);
  const int64_t T = q.size(2), S = k.size(2);
  TZ_CHECK(q_offset + T == S, "ring_attention: expected the queries to be the last ", T, " of ", S,
           " key positions, got q_offset ", q_offset);
  const Shards s = shard(S, T, q_offset, P);
  const Tensor qd = q.detach(), kd = k.detach(), vd = v.detach();
  std::vector<core::AttentionForward> result(static_cast<size_t>(P));
  // The backward runs after this function returns: everything it uses is captured by value.
  auto queries = [s](const Tensor& x, int64_t r) {
    return x.narrow(2, s.qs[size_t(r)], s.qs[size_t(r + 1)] - s.qs[size_t(r)]);
  };
  auto keys = [s](const Tensor& x, int64_t r) {
    return x.narrow(2, s.start[size_t(r)], s.start[size_t(r + 1)] - s.start[size_t(r)]);
  };
  auto worker = [s, q_offset, P](RingExchange& ring, int64_t r) {
    return Worker{.rank = r,
                  .P = P,
                  .spec = [s, q_offset, r](int64_t src) { return part_spec(s, q_offset, r, src); },
                  .pass = [&ring, r](RingBlock b) { return ring.exchange(r, std::move(b)); }};
  };
  {
    RingExchange ring(P);
    run_workers(ring, [&](int64_t r) {
      result[size_t(r)] =
          worker_forward(worker(ring, r), queries(qd, r), {.owner = r, .k = keys(kd, r), .v = keys(vd, r)});
    });
  }
  std::vector<Tensor> outs, lses;
  for (int64_t r = 0; r < P; ++r)
    if (result[size_t(r)].out.defined()) outs.push_back(result[size_t(r)].out), lses.push_back(result[size_t(r)].lse);
  Tensor out = cat_positions(outs), lse = lses.size() == 1 ? lses[0].contiguous() : cat(lses, 2);
  make_node(OpId::attention_merged, out, {q, k, v},
            [qd, kd, vd, out = out.detach(), lse, queries, keys, worker, P](const Tensor& g) {
              std::vector<Tensor> dq(static_cast<size_t>(P)), dk(static_cast<size_t>(P)), dv(static_cast<size_t>(P));
              const Tensor gc = g.contiguous();
              RingExchange ring(P);
              run_workers(ring, [&](int64_t r) {
                auto [dqr, home] = worker_backward(worker(ring, r), queries(gc, r), queries(qd, r), queries(out, r),
                                                   queries(lse, r), {.owner = r, .k = keys(kd, r), .v = keys(vd, r)});
                dq[size_t(r)] = dqr, dk[size_t(r)] = home.dk, dv[size_t(r)] = home.dv;
              });
              return std::vector<Tensor>{cat_positions(dq), cat_positions(dk), cat_positions(dv)};
            });
  return out;
}

namespace {
// A block's tensors as bytes for the wire, and back into a block of a given length.
size_t block_bytes(const RingBlock& b) {
  size_t n = 0;
  for (const Tensor* t : {&b.k, &b.v, &b.dk, &b.dv})
    if (t->defined()) n += size_t(t->numel()) * dtype_size(t->dtype());
  return n;
}
}  // namespace

Tensor ring_attention(const Tensor& q, const Tensor& k, const Tensor& v, Communicator& comm) {
  TZ_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.shape() == v.shape() && q.size(2) == k.size(2) &&
               q.size(0) == k.size(0) && q.size(3) == k.size(3) && q.dtype() == k.dtype() && k.dtype() == v.dtype(),
           "ring_attention: expected q [B, H, T, D] and k, v [B, G, T, D] of this rank's positions, one dtype, got ",
           q.shape(), ", ", k.shape(), ", ", v.shape());
  const int64_t P = comm.size(), r = comm.rank(), T = q.size(2);
  // Every rank's block length: the positions before rank r's are the blocks of ranks < r.
  std::vector<int64_t> lengths(static_cast<size_t>(P));
  comm.allgather(&T, sizeof T, lengths.data());
  Shards s;
  s.start.push_back(0);
  for (int64_t n : lengths) s.start.push_back(s.start.back() + n);
  s.qs = s.start;
  Shape block = k.shape();
  const DType dt = k.dtype();
  // Sends the held block to r + 1 and receives the one r - 1 holds: shard owner - 1.
  auto pass = [&comm, s, block, dt, r, P](RingBlock held) {
    const bool grads = held.dk.defined();
    std::vector<char> out;
    out.reserve(block_bytes(held));
    for (const Tensor* t : {&held.k, &held.v, &held.dk, &held.dv})
      if (t->defined()) {
        const Tensor c = t->contiguous();
        const char* p = static_cast<const char*>(c.raw_data());
        out.insert(out.end(), p, p + size_t(c.numel()) * dtype_size(dt));
      }
    RingBlock got{.owner = (held.owner + P - 1) % P};
    Shape shape = block;
    shape[2] = s.start[size_t(got.owner) + 1] - s.start[size_t(got.owner)];
    got.k = empty(shape, dt), got.v = empty(shape, dt);
    if (grads) got.dk = empty(shape, dt), got.dv = empty(shape, dt);
    std::vector<char> in(block_bytes(got));
    comm.sendrecv(out.data(), int64_t(out.size()), int((r + 1) % P), in.data(), int64_t(in.size()),
                  int((r + P - 1) % P));
    size_t at = 0;
    for (Tensor* t : {&got.k, &got.v, &got.dk, &got.dv})
      if (t->defined()) {
        const size_t n = size_t(t->numel()) * dtype_size(dt);
        std::memcpy(t->raw_data(), in.data() + at, n);
        at += n;
      }
    return got;
  };
  const Worker w{.rank = r, .P = P, .spec = [s, r](int64_t src) { return part_spec(s, 0, r, src); }, .pass = pass};
  const Tensor qd = q.detach().contiguous(), kd = k.detach().contiguous(), vd = v.detach().contiguous();
  core::AttentionForward f = worker_forward(w, qd, {.owner = r, .k = kd, .v = vd});
  if (!f.out.defined()) {  // no positions on this rank
    Shape lse_shape = q.shape();
    lse_shape.pop_back();
    f = {zeros_like(qd), full(lse_shape, -INFINITY, dt)};
  }
  Tensor out = f.out;
  // Collective: every rank runs its backward at the same time (as one training step does).
  make_node(OpId::attention_merged, out, {q, k, v}, [w, qd, kd, vd, out = out.detach(), lse = f.lse](const Tensor& g) {
    auto [dq, home] = worker_backward(w, g.contiguous(), qd, out, lse, {.owner = w.rank, .k = kd, .v = vd});
    return std::vector<Tensor>{dq, home.dk, home.dv};
  });
  return out;
}

}  // namespace tz::nn

namespace tz::zoo {

void register_ring_attention(nn::Registry& r) {
  r.add({.id = "ring_attention",
         .summary = "Ring attention: P workers (threads) rotate K/V blocks around a ring, merged by log-sum-exp",
         .keys = {nn::kRingShards},
         .test_config = R"({"mixer": "ring_attention", "ring_shards": 3})",
         .example = R"({"dim": 256, "depth": 4, "heads": 4, "mixer": "ring_attention", "ring_shards": 4})",
         .mixer = [](const nn::ModelDims& d, const nn::Config& c, Generator& gen) {
           nn::check_causal_self("ring_attention", d.causal, d.context_dim);
           const int64_t P = c.get(nn::kRingShards);
           TZ_CHECK(P >= 1, "ring_attention: ring_shards must be >= 1, got ", P);
           return std::make_shared<nn::SparseAttention>(
               nn::SparseAttentionOptions{
                   .dim = d.dim,
                   .heads = d.heads,
                   .name = cat_str("ring_attention(P=", P, ")"),
                   .attend = [P](const Tensor& q, const Tensor& k, const Tensor& v,
                                 int64_t q_offset) { return nn::ring_attention(q, k, v, q_offset, P); }},
               gen);
         }});
}

}  // namespace tz::zoo
