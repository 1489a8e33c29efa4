// BpeTokenizer: byte-level byte-pair encoding, learned from a text (Sennrich et al. 2016,
// "Neural Machine Translation of Rare Words with Subword Units", arXiv:1508.07909; on bytes
// as GPT-2 does, Radford et al. 2019).
//
// The base vocabulary is the 256 bytes (ids 0..255), so every byte string encodes, invalid
// UTF-8 and NUL bytes included. Training repeats: find the most frequent adjacent pair of
// tokens (a, b) in the text and make it a new token, id 256 + i for the i-th merge, until
// the vocabulary is full. Encoding applies the merges in the order they were learned.
//
// Merges never cross a word boundary: the text is first cut into pieces (pre_split), and
// pairs are counted and merged inside pieces only. Bytes fall in four classes: letters
// (A-Z, a-z and every byte >= 0x80, so a UTF-8 character stays inside its word), digits,
// whitespace (space, \t, \n, \v, \f, \r) and the rest (punctuation, symbols, control bytes).
// A piece is
//   - an optional single space followed by a run of one class other than whitespace
//     (" the", " 42", " ...", "Hello");
//   - a run of whitespace; when a word follows and the run ends in a space, that space is
//     left to start the word (GPT-2's "\s+(?!\S)"), so "\n  x" is "\n ", " x";
//   - cut every kMaxPieceBytes bytes, so that a long run (a line of '=') costs linear time.
// Unlike GPT-2's pattern, contractions are not special ("don't" is "don", "'", "t") and
// letters are by byte, not by Unicode category.
//
// Training counts each distinct piece once with its frequency, keeps the count of every pair
// and the pieces it occurs in, and after a merge updates only the pieces that held the pair;
// a max-heap of (count, pair), refreshed lazily, yields the next pair. Ties go to the pair
// with the smaller (left id, right id). Deterministic for a text and a vocabulary size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"

namespace tz::data {

// Bounds of a BPE vocabulary: the 256 bytes at least; at most 2^18 tokens.
constexpr int64_t kMinBpeVocab = 256;
constexpr int64_t kMaxBpeVocab = int64_t(1) << 18;
constexpr size_t kMaxPieceBytes = 64;

// The pieces of `text` (views into it, in order; they concatenate to the text).
std::vector<std::string_view> pre_split(std::string_view text);

struct BpeTrainOptions {
  int64_t vocab_size = 4096;  // 256 bytes + the merges to learn
  // Called now and then during training (about every 1 % of the merges, and at the end).
  std::function<void(int64_t merges_done, int64_t merges_wanted)> on_progress;
};

class BpeTokenizer final : public Tokenizer {
 public:
  using Merge = std::pair<int32_t, int32_t>;  // (left id, right id) -> id 256 + its index

  // Learns the merges from `text`. Stops early, with a smaller vocabulary, when no pair occurs
  // twice (a short text). Throws tz::Error for a vocab_size outside [256, 2^18].
  static BpeTokenizer train(std::string_view text, const BpeTrainOptions& options = {});
  // From merges (each id must already exist: < 256 + its index; no pair twice; no token
  // longer than kMaxPieceBytes). Errors start with `source`.
  explicit BpeTokenizer(std::vector<Merge> merges, const std::string& source = "bpe");

  // The JSON that to_json() writes: {"format": "tensorzoo-bpe", "version": 1, "pre_split":
  // "bytes-v1", "vocab_size": V, "merges": [[a, b], ...]}. Errors name `source` and the field.
  static BpeTokenizer from_json(const std::string& json, const std::string& source);
  std::string to_json() const override;

  std::string kind() const override { return "bpe"; }
  int64_t vocab_size() const override { return 256 + int64_t(merges_.size()); }
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  const std::vector<Merge>& merges() const { return merges_; }
  const std::string& token_bytes(int64_t id) const;  // the bytes of one token (checked)

 private:
  // The tokens of one piece: its bytes, merged by rank.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<Merge> merges_;
  std::unordered_map<uint64_t, int32_t> rank_;  // (left << 32 | right) -> merge index
  std::vector<std::string> bytes_;              // id -> its bytes
};

}  // namespace tz::data
