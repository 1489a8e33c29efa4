// Small text helpers for error messages: "did you mean ...?" suggestions.
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

}  // namespace tz
