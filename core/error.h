// tz::Error: the one exception type of tensorzoo. Its message names the op, what was
// expected and what came, e.g. "matmul: shape mismatch, lhs [4, 64, 128] vs rhs [256, 64]".
// Library code throws it for every bad input; assert() is for internal invariants only.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tz {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    os << '[';
    for (size_t i = 0; i < first.size(); ++i) os << (i ? ", " : "") << first[i];
    os << ']';
  } else {
    os << first;
  }
  append(os, rest...);
}
}  // namespace detail

// Concatenates its arguments into one string (shapes print as [4, 64, 128]).
template <class... Args>
std::string cat_str(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

}  // namespace tz

// TZ_CHECK(cond, "op: what", details...): throws tz::Error with the concatenated message.
#define TZ_CHECK(cond, ...)                                     \
  do {                                                          \
    if (!(cond)) throw ::tz::Error(::tz::cat_str(__VA_ARGS__)); \
  } while (0)
