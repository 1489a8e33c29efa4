// Data-parallel training: see distributed.h.
#include "train/distributed.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "autograd/node.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/dtype.h"

namespace tz::train {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string divisors(int64_t n) {
  std::vector<int64_t> ds;
  for (int64_t d = 1; d * d <= n; ++d)
    if (n % d == 0) ds.insert(ds.end(), {d, n / d});
  std::sort(ds.begin(), ds.end());
  ds.erase(std::unique(ds.begin(), ds.end()), ds.end());
  std::string s;
  for (int64_t d : ds) s += cat_str(s.empty() ? "" : ", ", d);
  return s;
}

// FNV-1a over bytes: the fingerprint of a rank's tensors.
uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
}  // namespace

void check_shards(int64_t batch, int64_t shards, int ranks) {
  TZ_CHECK(shards >= 1 && batch >= 1 && batch % shards == 0, "train: the batch of ", batch, " rows cannot be cut into ",
           shards, " equal shards (--shards; by default one per rank); shards must divide it: ", divisors(batch));
  TZ_CHECK(ranks >= 1 && shards % ranks == 0, "train: ", ranks, " ranks cannot share the run's ", shards,
           " shards of the batch; run it on a number of ranks that divides ", shards, ": ", divisors(shards),
           " (a new run chooses its shards with --shards, e.g. the batch ", batch, ")");
}

// A bucket: consecutive parameters of one dtype, then one flag per parameter (1: it has a
// gradient). Fast: `buf` holds the n elements. Deterministic: `buf` holds the m local
// shards' copies [m][N * slice] (n padded to N slices), `send` and `recv` the alltoall's
// [N][m][slice], `out` the allgathered [N][slice].
struct DataParallel::Bucket {
  DType dtype = DType::f32;
  std::vector<size_t> params;
  int64_t n = 0, slice = 0;
  std::vector<char> buf, send, recv, out;
};

DataParallel::DataParallel(const std::vector<std::pair<std::string, Tensor>>& params,
                           std::shared_ptr<Communicator> comm, const ParallelOptions& options)
    : comm_(std::move(comm)), options_(options) {
  TZ_CHECK(comm_, "DataParallel: no communicator");
  TZ_CHECK(options_.bucket_mb > 0, "DataParallel: bucket_mb must be positive, got ", options_.bucket_mb);
  const int N = comm_->size();
  TZ_CHECK(options_.shards >= 1 && options_.shards % N == 0, "DataParallel: ", N, " ranks cannot share ",
           options_.shards, " shards (a multiple of the ranks)");
  local_ = options_.shards / N;
  first_ = comm_->rank() * local_;
  // Every rank must hold the same parameters in the same order, or the buckets would mix them.
  std::string layout;
  for (const auto& [name, p] : params) {
    TZ_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, "DataParallel: parameter '", name, "' is ",
             dtype_name(p.dtype()), ", expected f32 or f64");
    params_.push_back(p);
    layout += cat_str(name, p.shape(), dtype_name(p.dtype()), ";");
  }
  const std::vector<std::string> layouts = allgather_strings(*comm_, layout);
  for (int r = 1; r < N; ++r)
    TZ_CHECK(layouts[size_t(r)] == layouts[0], "DataParallel: rank ", r,
             "'s parameters differ from rank 0's (names, shapes or dtypes): every rank must build the same model");
  // Buckets over the parameters in reverse order, cut at bucket_mb or a change of dtype.
  const double cap = options_.bucket_mb * 1e6;
  where_.resize(params_.size());
  for (size_t i = params_.size(); i-- > 0;) {
    const Tensor& p = params_[i];
    const double bytes = double(p.numel()) * double(dtype_size(p.dtype()));
    if (buckets_.empty() || buckets_.back().dtype != p.dtype() ||
        (!buckets_.back().params.empty() && double(buckets_.back().n) * double(dtype_size(p.dtype())) + bytes > cap)) {
      buckets_.emplace_back();
      buckets_.back().dtype = p.dtype();
    }
    Bucket& b = buckets_.back();
    where_[i] = {buckets_.size() - 1, b.n, int64_t(b.params.size())};
    b.params.push_back(i);
    b.n += p.numel();
  }
  for (Place& w : where_) w.flag += buckets_[w.bucket].n;  // the flags follow the gradients
  for (Bucket& b : buckets_) {
    b.n += int64_t(b.params.size());
    const size_t es = dtype_size(b.dtype);
    if (options_.deterministic) {
      b.slice = (b.n + N - 1) / N;
      b.buf.assign(size_t(local_ * N * b.slice) * es, 0);
      b.send.resize(b.buf.size());
      b.recv.resize(size_t(N * local_ * b.slice) * es);
      b.out.resize(size_t(N * b.slice) * es);
    } else {
      b.buf.assign(size_t(b.n) * es, 0);
    }
  }
  ready_.assign(buckets_.size(), false);
  packed_.assign(params_.size(), false);
  if (options_.overlap && N > 1 && comm_->concurrent_calls()) thread_ = std::thread([this] { comm_loop(); });
}

DataParallel::~DataParallel() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
}

// Copies parameter i's gradient (zeros and flag 0 when it has none) into its bucket: the
// fast buffer, or shard slot `slot` of the deterministic one.
void DataParallel::pack(size_t i, int64_t slot) {
  const Place& w = where_[i];
  Bucket& b = buckets_[w.bucket];
  const size_t es = dtype_size(b.dtype);
  char* base = b.buf.data() + (options_.deterministic ? size_t(slot * comm_->size() * b.slice) * es : 0);
  const Tensor g = params_[i].grad();
  const int64_t n = params_[i].numel();
  if (g.defined()) {
    const Tensor c = core::contiguous(g);
    std::memcpy(base + size_t(w.offset) * es, c.raw_data(), size_t(n) * es);
  } else {
    std::memset(base + size_t(w.offset) * es, 0, size_t(n) * es);
  }
  if (b.dtype == DType::f32)
    reinterpret_cast<float*>(base)[w.flag] = g.defined() ? 1.f : 0.f;
  else
    reinterpret_cast<double*>(base)[w.flag] = g.defined() ? 1.0 : 0.0;
}

namespace {
// acc = (x_0 + x_1 + ... + x_{K-1}) * scale, in this order: the one fold both modes share.
template <class T>
void fold(T* acc, const T* x, int64_t K, int64_t stride, int64_t n, T scale) {
  std::memcpy(acc, x, size_t(n) * sizeof(T));
  for (int64_t k = 1; k < K; ++k) {
    const T* xk = x + k * stride;
    for (int64_t i = 0; i < n; ++i) acc[i] += xk[i];
  }
  if (K > 1)
    for (int64_t i = 0; i < n; ++i) acc[i] *= scale;
}
}  // namespace

void DataParallel::reduce(Bucket& b) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t N = comm_->size(), K = options_.shards, m = local_;
  const size_t es = dtype_size(b.dtype);
  if (!options_.deterministic) {
    if (b.dtype == DType::f32) {
      auto* x = reinterpret_cast<float*>(b.buf.data());
      comm_->allreduce_sum(x, b.n);
      if (K > 1)
        for (int64_t i = 0; i < b.n; ++i) x[i] *= 1.f / float(K);
    } else {
      auto* x = reinterpret_cast<double*>(b.buf.data());
      comm_->allreduce_sum(x, b.n);
      if (K > 1)
        for (int64_t i = 0; i < b.n; ++i) x[i] *= 1.0 / double(K);
    }
  } else {
    // [m][N][slice] -> [N][m][slice]: slice q of every local shard goes to rank q.
    const size_t s = size_t(b.slice) * es;
    for (int64_t q = 0; q < N; ++q)
      for (int64_t j = 0; j < m; ++j)
        std::memcpy(b.send.data() + size_t(q * m + j) * s, b.buf.data() + size_t(j * N + q) * s, s);
    comm_->alltoall(b.send.data(), int64_t(size_t(m) * s), b.recv.data());
    // recv [N][m][slice] is shard order k = p m + j: fold my slice of the K shards.
    std::vector<char> mine(s);
    if (b.dtype == DType::f32)
      fold(reinterpret_cast<float*>(mine.data()), reinterpret_cast<const float*>(b.recv.data()), K, b.slice, b.slice,
           1.f / float(K));
    else
      fold(reinterpret_cast<double*>(mine.data()), reinterpret_cast<const double*>(b.recv.data()), K, b.slice, b.slice,
           1.0 / double(K));
    comm_->allgather(mine.data(), int64_t(s), b.out.data());
  }
  const double dt = seconds_since(t0);
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.reduce_s += dt;
}

void DataParallel::comm_loop() {
  comm_->set_patient_waits(options_.patient);
  for (;;) {
    size_t next;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || (reduced_ < ready_.size() && ready_[reduced_]); });
      if (stop_) return;
      next = reduced_;
    }
    try {
      reduce(buckets_[next]);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      thread_error_ = e.what();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++reduced_;
    }
    cv_.notify_all();
  }
}

void DataParallel::submit(size_t bi) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready_[bi] = true;
    ++submitted_;
  }
  cv_.notify_all();
}

void DataParallel::wait_all() {
  if (thread_.joinable()) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return reduced_ == buckets_.size(); });
    if (!thread_error_.empty()) throw Error(thread_error_);
    return;
  }
  for (; reduced_ < buckets_.size(); ++reduced_) reduce(buckets_[reduced_]);
}

// This rank's shards, one after the other: loss and backward each; buckets packed, and in
// the last pass handed over as they become final.
void DataParallel::passes(const std::function<Tensor(int64_t shard)>& shard_loss, std::vector<double>& losses) {
  std::vector<size_t> unpacked(buckets_.size());  // params of each bucket not packed yet, last pass
  for (int64_t j = 0; j < local_; ++j) {
    const bool last = j + 1 == local_;
    if (j == 0 || options_.deterministic)
      for (const Tensor& p : params_) p.zero_grad();
    Tensor loss = shard_loss(first_ + j);
    TZ_CHECK(loss.defined() && loss.numel() == 1, "DataParallel: shard ", first_ + j,
             "'s loss must be one element, got ", loss.defined() ? loss.shape() : Shape{});
    losses[size_t(j)] = loss.item();
    if (!last) {
      loss.backward();
      if (options_.deterministic)
        for (size_t i = 0; i < params_.size(); ++i) pack(i, j);
      continue;
    }
    // The last pass: each bucket goes as soon as its last gradient is final.
    std::fill(packed_.begin(), packed_.end(), false);
    for (size_t bi = 0; bi < buckets_.size(); ++bi) unpacked[bi] = buckets_[bi].params.size();
    std::unordered_map<const AutogradMeta*, size_t> index;
    for (size_t i = 0; i < params_.size(); ++i)
      if (params_[i].requires_grad()) index[params_[i].impl().autograd.get()] = i;
    auto final_grad = [&](size_t i) {
      if (packed_[i]) return;
      packed_[i] = true;
      pack(i, j);
      const size_t bi = where_[i].bucket;
      if (--unpacked[bi] == 0) submit(bi);
    };
    {
      LeafGradHook hook([&](const AutogradMeta* leaf) {
        auto it = index.find(leaf);
        if (it != index.end()) final_grad(it->second);
      });
      loss.backward();
    }
    stats_.early_buckets += int64_t(submitted_);
    for (size_t i = 0; i < params_.size(); ++i) final_grad(i);  // those no edge reached
  }
}

double DataParallel::loss_and_grads(const std::function<Tensor(int64_t shard)>& shard_loss) {
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::fill(ready_.begin(), ready_.end(), false);
    submitted_ = reduced_ = 0;
    thread_error_.clear();
  }
  std::vector<double> losses(static_cast<size_t>(local_));
  try {
    passes(shard_loss, losses);
  } catch (const std::exception& e) {
    // Buckets already handed to the reduction thread wait in collectives the other ranks may
    // never join: say why and end the job, rather than hang joining that thread.
    if (thread_.joinable() && submitted_ > 0) {
      std::fprintf(stderr, "tensorzoo (rank %d of %d): %s\n", comm_->rank(), comm_->size(), e.what());
      std::fflush(stderr);
      comm_->abort(1);
    }
    throw;
  }
  stats_.compute_s += seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  wait_all();
  stats_.wait_s += seconds_since(t1);
  // Unpack G into the gradients; a parameter no shard gave a gradient keeps none.
  for (Bucket& b : buckets_) {
    const size_t es = dtype_size(b.dtype);
    const char* g = options_.deterministic ? b.out.data() : b.buf.data();
    for (const size_t i : b.params) {
      const int64_t f = where_[i].flag;
      const double flag =
          b.dtype == DType::f32 ? double(reinterpret_cast<const float*>(g)[f]) : reinterpret_cast<const double*>(g)[f];
      if (flag == 0) {
        params_[i].zero_grad();
        continue;
      }
      Tensor t = empty(params_[i].shape(), b.dtype);
      std::memcpy(t.raw_data(), g + size_t(where_[i].offset) * es, size_t(params_[i].numel()) * es);
      params_[i].set_grad(t);
    }
    stats_.grad_bytes += double(b.n) * double(es);
  }
  stats_.buckets += int64_t(buckets_.size());
  // The step's loss: the K shard losses in shard order.
  const auto t2 = std::chrono::steady_clock::now();
  std::vector<double> all(static_cast<size_t>(options_.shards));
  comm_->allgather(losses.data(), int64_t(losses.size() * sizeof(double)), all.data());
  double sum = 0;
  for (double l : all) sum += l;
  stats_.loss_s += seconds_since(t2);
  ++stats_.steps;
  return sum / double(options_.shards);
}

void DataParallel::broadcast(const std::vector<Tensor>& tensors, int root) {
  for (const Tensor& t : tensors) {
    TZ_CHECK(t.is_contiguous(), "DataParallel::broadcast: tensors must be contiguous, got strides ", t.strides());
    comm_->broadcast(t.raw_data(), t.numel() * int64_t(dtype_size(t.dtype())), root);
  }
}

void DataParallel::check_replicas(const std::vector<Tensor>& tensors, const std::string& when) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const Tensor& t : tensors) {
    const Tensor c = core::contiguous(t);
    h = fnv1a(c.raw_data(), size_t(c.numel()) * dtype_size(c.dtype()), h);
  }
  std::vector<uint64_t> all(static_cast<size_t>(comm_->size()));
  comm_->allgather(&h, sizeof h, all.data());
  for (size_t r = 1; r < all.size(); ++r)
    TZ_CHECK(all[r] == all[0], "train: rank ", r, "'s parameters differ from rank 0's ", when,
             " (replicas must stay identical)");
}

int64_t DataParallel::num_buckets() const { return int64_t(buckets_.size()); }

bool DataParallel::any(bool mine) {
  double x = mine ? 1 : 0;
  comm_->allreduce_sum(&x, 1);
  return x > 0;
}

}  // namespace tz::train
