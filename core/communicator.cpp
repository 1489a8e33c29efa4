// The single process as a communicator, and the helpers every communicator shares.
#include "core/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace tz {

void SoloCommunicator::broadcast(void*, int64_t, int root) {
  TZ_CHECK(root == 0, "broadcast: root ", root, " is not a rank of a single process");
}

void SoloCommunicator::allgather(const void* send, int64_t bytes, void* recv) {
  if (bytes > 0) std::memmove(recv, send, size_t(bytes));
}

void SoloCommunicator::alltoall(const void* send, int64_t bytes, void* recv) {
  if (bytes > 0) std::memmove(recv, send, size_t(bytes));
}

void SoloCommunicator::sendrecv(const void* send, int64_t send_bytes, int to, void* recv, int64_t recv_bytes,
                                int from) {
  TZ_CHECK(to == 0 && from == 0 && send_bytes == recv_bytes, "sendrecv: a single process sends to itself only, got to ",
           to, ", from ", from, ", ", send_bytes, " bytes sent and ", recv_bytes, " expected");
  if (send_bytes > 0) std::memmove(recv, send, size_t(send_bytes));
}

void SoloCommunicator::abort(int code) { std::_Exit(code); }

std::vector<std::string> allgather_strings(Communicator& comm, const std::string& mine) {
  const int P = comm.size();
  std::vector<int64_t> sizes(static_cast<size_t>(P));
  const int64_t n = int64_t(mine.size());
  comm.allgather(&n, sizeof n, sizes.data());
  int64_t longest = 0;
  for (int64_t s : sizes) longest = std::max(longest, s);
  std::string padded = mine;
  padded.resize(size_t(longest));
  std::string all(size_t(longest) * size_t(P), '\0');
  comm.allgather(padded.data(), longest, all.data());
  std::vector<std::string> out;
  for (int p = 0; p < P; ++p) out.push_back(all.substr(size_t(p) * size_t(longest), size_t(sizes[size_t(p)])));
  return out;
}

std::string broadcast_string(Communicator& comm, const std::string& s, int root) {
  int64_t n = int64_t(s.size());
  comm.broadcast(&n, sizeof n, root);
  std::string out = comm.rank() == root ? s : std::string(size_t(n), '\0');
  comm.broadcast(out.data(), n, root);
  return out;
}

void on_rank0(Communicator& comm, const std::function<void()>& fn) {
  if (comm.size() == 1) return fn();  // its own exceptions, as without a group
  std::string failure;
  if (comm.rank() == 0) {
    try {
      fn();
    } catch (const std::exception& e) {
      failure = e.what();
      if (failure.empty()) failure = "unknown error";
    }
  }
  failure = broadcast_string(comm, failure, 0);
  if (!failure.empty()) throw AgreedError(failure);
}

}  // namespace tz
