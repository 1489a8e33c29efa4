#include "core/text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace tz {

int64_t edit_distance(const std::string& a, const std::string& b) {
  // One row of the dynamic programme: d[j] = distance(a[0, i), b[0, j)).
  std::vector<int64_t> d(b.size() + 1);
  std::iota(d.begin(), d.end(), 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diag = d[0];
    d[0] = int64_t(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int64_t up = d[j];
      d[j] = std::min({d[j] + 1, d[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return d[b.size()];
}

std::string nearest(const std::string& word, const std::vector<std::string>& candidates) {
  // A candidate that the word begins (a shortened name) counts as distance 1.
  std::string best;
  int64_t best_d = -1;
  for (const std::string& c : candidates) {
    int64_t d = !word.empty() && c.rfind(word, 0) == 0 ? 1 : edit_distance(word, c);
    if (best_d < 0 || d < best_d) best_d = d, best = c;
  }
  return best_d >= 0 && best_d <= std::max<int64_t>(2, int64_t(word.size()) / 2) ? best : "";
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? sep : "") + items[i];
  return s;
}

std::string read_file(const std::string& path, const std::string& what, uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  TZ_CHECK(fd >= 0, what, ": cannot open '", path, "': ", std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  TZ_CHECK(::fstat(fd, &st) == 0, what, ": cannot stat '", path, "': ", std::strerror(errno));
  const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                     : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISCHR(st.st_mode)  ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : nullptr;
  TZ_CHECK(S_ISREG(st.st_mode), what, ": '", path, "' is ", kind ? kind : "not a regular file",
           ", expected a regular file");
  TZ_CHECK(uint64_t(st.st_size) <= max_bytes, what, ": '", path, "' has ", st.st_size, " bytes, more than the ",
           max_bytes, " this reads");
  std::string bytes(size_t(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    TZ_CHECK(n >= 0, what, ": error reading '", path, "': ", std::strerror(errno));
    if (n == 0) break;  // the file shrank while read
    done += size_t(n);
  }
  bytes.resize(done);
  return bytes;
}

}  // namespace tz
