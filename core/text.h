// Small text helpers: "did you mean ...?" suggestions for error messages, and reading a
// whole file that a user named.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tz {

// Levenshtein distance (insertions, deletions, substitutions).
int64_t edit_distance(const std::string& a, const std::string& b);
// The candidate nearest to `word` by edit distance (a candidate starting with `word` counts
// as 1), or "" when none is within half of the word's length, so that a suggestion is only
// made when it is plausibly a typo.
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);
// "a, b, c"
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

// The bytes of the regular file at `path`, at most max_bytes of them. A FIFO, a device or a
// directory is refused before anything is read (a FIFO would block forever), as is a larger
// file; errors start with `what` ("--config", "TextDataset") and name the path.
std::string read_file(const std::string& path, const std::string& what, uint64_t max_bytes = uint64_t(1) << 32);

}  // namespace tz
