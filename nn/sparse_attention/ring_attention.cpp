// Ring attention: see ring_attention.h.
#include "nn/sparse_attention/ring_attention.h"

#include <algorithm>
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
  auto queries = [&](int64_t r) { return qd.narrow(2, s.qs[size_t(r)], s.qs[size_t(r + 1)] - s.qs[size_t(r)]); };
  auto keys = [&](const Tensor& x, int64_t r) {
    return x.narrow(2, s.start[size_t(r)], s.start[size_t(r + 1)] - s.start[size_t(r)]);
  };
  {
    RingExchange ring(P);
    run_workers(ring, [&](int64_t r) {
      RingBlock held{.owner = r, .k = keys(kd, r), .v = keys(vd, r)};
      const Tensor qr = queries(r);
      std::vector<core::AttentionForward> parts;
      for (int64_t t = 0; t < P; ++t) {
        if (held.owner <= r && qr.size(2) > 0 && held.k.size(2) > 0)
          parts.push_back(core::attention(qr, held.k, held.v, part_spec(s, q_offset, r, held.owner)));
        if (t + 1 < P) held = ring.exchange(r, std::move(held));
      }
      if (!parts.empty()) result[size_t(r)] = core::attention_merge(parts);
    });
  }
  std::vector<Tensor> outs, lses;
  for (int64_t r = 0; r < P; ++r)
    if (result[size_t(r)].out.defined()) outs.push_back(result[size_t(r)].out), lses.push_back(result[size_t(r)].lse);
  Tensor out = cat_positions(outs), lse = lses.size() == 1 ? lses[0].contiguous() : cat(lses, 2);
  make_node(
      OpId::attention_merged, out, {q, k, v}, [qd, kd, vd, out = out.detach(), lse, s, q_offset, P](const Tensor& g) {
        std::vector<Tensor> dq(static_cast<size_t>(P)), dk(static_cast<size_t>(P)), dv(static_cast<size_t>(P));
        const Tensor gc = g.contiguous();
        RingExchange ring(P);
        run_workers(ring, [&](int64_t r) {
          const int64_t q0 = s.qs[size_t(r)], n = s.qs[size_t(r + 1)] - q0, k0 = s.start[size_t(r)],
                        m = s.start[size_t(r + 1)] - k0;
          RingBlock held{.owner = r,
                         .k = kd.narrow(2, k0, m),
                         .v = vd.narrow(2, k0, m),
                         .dk = zeros_like(kd.narrow(2, k0, m)),
                         .dv = zeros_like(vd.narrow(2, k0, m))};
          Tensor dqr = zeros_like(qd.narrow(2, q0, n));
          for (int64_t t = 0; t < P; ++t) {
            if (held.owner <= r && n > 0 && held.k.size(2) > 0) {
              core::AttentionGrads a = core::attention_backward(gc.narrow(2, q0, n), qd.narrow(2, q0, n), held.k,
                                                                held.v, out.narrow(2, q0, n), lse.narrow(2, q0, n),
                                                                part_spec(s, q_offset, r, held.owner));
              dqr = dqr + a.dq;
              held.dk = held.dk + a.dk;
              held.dv = held.dv + a.dv;
            }
            held = ring.exchange(r, std::move(held));  // P exchanges: every block comes home
          }
          dq[size_t(r)] = dqr, dk[size_t(r)] = held.dk, dv[size_t(r)] = held.dv;
        });
        return std::vector<Tensor>{cat_positions(dq), cat_positions(dk), cat_positions(dv)};
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
