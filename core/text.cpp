#include "core/text.h"

#include <algorithm>
#include <numeric>

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

}  // namespace tz
