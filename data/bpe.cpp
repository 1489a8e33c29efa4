#include "data/bpe.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <queue>

#include "core/error.h"
#include "core/json.h"

namespace tz::data {

namespace {

enum class ByteClass { letter, digit, space, other };

ByteClass byte_class(char c) {
  const auto b = static_cast<unsigned char>(c);
  if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b >= 0x80) return ByteClass::letter;
  if (b >= '0' && b <= '9') return ByteClass::digit;
  if (b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r') return ByteClass::space;
  return ByteClass::other;
}

uint64_t pair_key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

// Merges every (a, b) in `sym` into z, left to right ("aaa" with (a, a): "z a").
bool merge_pair(std::vector<int32_t>& sym, int32_t a, int32_t b, int32_t z) {
  size_t w = 0;
  bool merged = false;
  for (size_t r = 0; r < sym.size(); ++w) {
    if (r + 1 < sym.size() && sym[r] == a && sym[r + 1] == b) {
      sym[w] = z;
      r += 2;
      merged = true;
    } else {
      sym[w] = sym[r++];
    }
  }
  sym.resize(w);
  return merged;
}

constexpr const char* kFormat = "tensorzoo-bpe";
constexpr int kVersion = 1;
constexpr const char* kPreSplit = "bytes-v1";  // the rules of pre_split, as documented in bpe.h

}  // namespace

std::vector<std::string_view> pre_split(std::string_view text) {
  std::vector<std::string_view> pieces;
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    const ByteClass c = byte_class(text[i]);
    if (text[i] == ' ' && i + 1 < n && byte_class(text[i + 1]) != ByteClass::space) {
      // " word": the space and a run of the next byte's class
      const ByteClass next = byte_class(text[i + 1]);
      j = i + 1;
      while (j < n && byte_class(text[j]) == next) ++j;
    } else if (c == ByteClass::space) {
      while (j < n && byte_class(text[j]) == ByteClass::space) ++j;
      // Leave a final space to the word that follows.
      if (j < n && j - i >= 2 && text[j - 1] == ' ') --j;
    } else {
      while (j < n && byte_class(text[j]) == c) ++j;
    }
    for (; i < j; i += std::min(kMaxPieceBytes, j - i))
      pieces.push_back(text.substr(i, std::min(kMaxPieceBytes, j - i)));
  }
  return pieces;
}

BpeTokenizer::BpeTokenizer(std::vector<Merge> merges, const std::string& source) : merges_(std::move(merges)) {
  TZ_CHECK(256 + int64_t(merges_.size()) <= kMaxBpeVocab, source, ": ", merges_.size(),
           " merges make a vocabulary larger than ", kMaxBpeVocab);
  bytes_.reserve(256 + merges_.size());
  for (int b = 0; b < 256; ++b) bytes_.emplace_back(1, static_cast<char>(b));
  for (size_t i = 0; i < merges_.size(); ++i) {
    const auto [a, b] = merges_[i];
    const int64_t next = 256 + int64_t(i);
    TZ_CHECK(a >= 0 && b >= 0 && a < next && b < next, source, ": merge ", i, " is (", a, ", ", b,
             "), but a merge may only join ids that exist before it, in [0, ", next, ")");
    TZ_CHECK(bytes_[size_t(a)].size() + bytes_[size_t(b)].size() <= kMaxPieceBytes, source, ": merge ", i,
             " makes a token of ", bytes_[size_t(a)].size() + bytes_[size_t(b)].size(),
             " bytes, longer than any piece of text (", kMaxPieceBytes, ")");
    TZ_CHECK(rank_.emplace(pair_key(a, b), int32_t(i)).second, source, ": merge ", i, " (", a, ", ", b,
             ") repeats merge ", rank_.at(pair_key(a, b)));
    bytes_.push_back(bytes_[size_t(a)] + bytes_[size_t(b)]);
  }
}

BpeTokenizer BpeTokenizer::train(std::string_view text, const BpeTrainOptions& options) {
  TZ_CHECK(options.vocab_size >= kMinBpeVocab && options.vocab_size <= kMaxBpeVocab,
           "bpe: the vocabulary size must be in [", kMinBpeVocab, ", ", kMaxBpeVocab, "] (256 bytes + merges), got ",
           options.vocab_size);
  const int64_t wanted = options.vocab_size - 256;
  // The distinct pieces, each with its count.
  struct Word {
    std::vector<int32_t> sym;
    int64_t count = 0;
  };
  std::vector<Word> words;
  {
    std::unordered_map<std::string_view, int64_t> seen;
    for (std::string_view p : pre_split(text)) {
      auto [it, fresh] = seen.emplace(p, int64_t(words.size()));
      if (fresh) words.push_back({std::vector<int32_t>(p.begin(), p.end()), 0});
      ++words[size_t(it->second)].count;
    }
    for (Word& w : words)
      for (int32_t& s : w.sym) s = static_cast<unsigned char>(s);  // char may be signed
  }
  // Pair counts, and the words each pair occurs in (a word may be listed after it lost the
  // pair: harmless, it is skipped then).
  std::unordered_map<uint64_t, int64_t> count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  auto note_word = [&](uint64_t key, int32_t w) {
    std::vector<int32_t>& list = where[key];
    if (list.empty() || list.back() != w) list.push_back(w);
  };
  for (size_t w = 0; w < words.size(); ++w)
    for (size_t k = 0; k + 1 < words[w].sym.size(); ++k) {
      const uint64_t key = pair_key(words[w].sym[k], words[w].sym[k + 1]);
      count[key] += words[w].count;
      note_word(key, int32_t(w));
    }
  // Max-heap of (count, pair); ties: the smaller pair key first. An entry may be stale (its
  // count since lowered): checked when popped, and pushed again with the current count.
  using Entry = std::pair<int64_t, uint64_t>;
  auto lower = [](const Entry& x, const Entry& y) {
    return x.first < y.first || (x.first == y.first && x.second > y.second);
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(lower)> heap(lower);
  for (const auto& [key, c] : count) heap.push({c, key});

  std::vector<Merge> merges;
  const int64_t report_every = std::max<int64_t>(1, wanted / 100);
  std::vector<std::pair<uint64_t, int64_t>> delta;  // per word: pair -> change of its count
  std::vector<uint64_t> grown;
  while (int64_t(merges.size()) < wanted && !heap.empty()) {
    const auto [c, key] = heap.top();
    heap.pop();
    const auto it = count.find(key);
    const int64_t now = it == count.end() ? 0 : it->second;
    if (now != c) {
      if (now > 0) heap.push({now, key});
      continue;
    }
    if (c < 2) break;  // nothing repeats: more merges would only memorise single words
    const int32_t a = int32_t(key >> 32), b = int32_t(key & 0xffffffffu), z = 256 + int32_t(merges.size());
    merges.push_back({a, b});
    std::vector<int32_t> list = std::move(where[key]);
    where.erase(key);
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    grown.clear();
    for (int32_t w : list) {
      Word& word = words[size_t(w)];
      std::vector<int32_t> before = word.sym;
      if (!merge_pair(word.sym, a, b, z)) continue;
      // The word's pairs before (counted down) and after (counted up), netted per pair.
      delta.clear();
      for (size_t k = 0; k + 1 < before.size(); ++k) delta.push_back({pair_key(before[k], before[k + 1]), -word.count});
      for (size_t k = 0; k + 1 < word.sym.size(); ++k)
        delta.push_back({pair_key(word.sym[k], word.sym[k + 1]), word.count});
      std::sort(delta.begin(), delta.end());
      for (size_t k = 0; k < delta.size();) {
        const uint64_t p = delta[k].first;
        int64_t d = 0;
        for (; k < delta.size() && delta[k].first == p; ++k) d += delta[k].second;
        if (d == 0) continue;
        int64_t& slot = count[p];
        slot += d;
        if (d > 0) {
          note_word(p, w);
          grown.push_back(p);
        }
        if (slot == 0) count.erase(p);
      }
    }
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (uint64_t p : grown)
      if (auto g = count.find(p); g != count.end()) heap.push({g->second, p});
    count.erase(key);
    if (options.on_progress && int64_t(merges.size()) % report_every == 0)
      options.on_progress(int64_t(merges.size()), wanted);
  }
  if (options.on_progress && (merges.empty() || int64_t(merges.size()) % report_every != 0))
    options.on_progress(int64_t(merges.size()), wanted);
  return BpeTokenizer(std::move(merges));
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& sym) const {
  sym.assign(piece.begin(), piece.end());
  for (int32_t& s : sym) s = static_cast<unsigned char>(s);
  // Merging in rank order one merge at a time equals repeatedly merging the present pair of
  // lowest rank: a merge only creates pairs with its new token, whose merges rank later.
  while (sym.size() > 1) {
    int32_t best = -1;
    for (size_t k = 0; k + 1 < sym.size(); ++k) {
      const auto it = rank_.find(pair_key(sym[k], sym[k + 1]));
      if (it != rank_.end() && (best < 0 || it->second < best)) best = it->second;
    }
    if (best < 0) break;
    merge_pair(sym, merges_[size_t(best)].first, merges_[size_t(best)].second, 256 + best);
  }
}

std::vector<int64_t> BpeTokenizer::encode(std::string_view text) const {
  // A cache per call: words repeat, and a cache owned by the call needs no lock when several
  // threads encode with one tokenizer.
  std::unordered_map<std::string_view, std::vector<int32_t>> cache;
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3);
  std::vector<int32_t> sym;
  for (std::string_view piece : pre_split(text)) {
    auto it = cache.find(piece);
    if (it == cache.end()) {
      encode_piece(piece, sym);
      it = cache.emplace(piece, sym).first;
    }
    ids.insert(ids.end(), it->second.begin(), it->second.end());
  }
  return ids;
}

const std::string& BpeTokenizer::token_bytes(int64_t id) const {
  TZ_CHECK(id >= 0 && id < vocab_size(), "bpe: id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  return bytes_[size_t(id)];
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    TZ_CHECK(ids[i] >= 0 && ids[i] < vocab_size(), "BpeTokenizer::decode: id ", ids[i], " at position ", i,
             " is outside the vocabulary [0, ", vocab_size(), ")");
    out += bytes_[size_t(ids[i])];
  }
  return out;
}

std::string BpeTokenizer::to_json() const {
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& [a, b] : merges_) merges.push_back({a, b});
  const nlohmann::json j = {{"format", kFormat},
                            {"version", kVersion},
                            {"pre_split", kPreSplit},
                            {"vocab_size", vocab_size()},
                            {"merges", merges}};
  return j.dump() + "\n";
}

BpeTokenizer BpeTokenizer::from_json(const std::string& text, const std::string& source) {
  const nlohmann::json j = parse_json(text, source);
  TZ_CHECK(j.is_object(), source, ": expected a BPE tokenizer (a JSON object with \"format\": \"", kFormat, "\")");
  for (const auto& item : j.items())
    TZ_CHECK(item.key() == "format" || item.key() == "version" || item.key() == "pre_split" ||
                 item.key() == "vocab_size" || item.key() == "merges",
             source, ": unknown key '", item.key().substr(0, 60),
             "' (a BPE tokenizer has format, version, pre_split, vocab_size, merges)");
  auto need = [&](const char* key) {
    TZ_CHECK(j.contains(key), source, ": no '", key, "' (expected a BPE tokenizer written by tensorzoo)");
  };
  for (const char* key : {"format", "version", "pre_split", "vocab_size", "merges"}) need(key);
  const std::string format = json_get<std::string>(j, "format", source);
  TZ_CHECK(format == kFormat, source, ": format '", format.substr(0, 60), "', expected '", kFormat, "'");
  const int64_t version = json_get<int64_t>(j, "version", source);
  TZ_CHECK(version == kVersion, source, ": version ", version, " is not supported (this build reads ", kVersion, ")");
  const std::string split = json_get<std::string>(j, "pre_split", source);
  TZ_CHECK(split == kPreSplit, source, ": pre_split '", split.substr(0, 60), "' is not supported (this build has '",
           kPreSplit, "')");
  const nlohmann::json& m = j.at("merges");
  TZ_CHECK(m.is_array(), source, ": 'merges' must be a list of [left, right] id pairs");
  TZ_CHECK(int64_t(m.size()) <= kMaxBpeVocab - 256, source, ": ", m.size(), " merges, more than the ",
           kMaxBpeVocab - 256, " a vocabulary may have");
  std::vector<Merge> merges;
  merges.reserve(m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    const nlohmann::json& p = m[i];
    TZ_CHECK(p.is_array() && p.size() == 2 && p[0].is_number_integer() && p[1].is_number_integer(), source, ": merge ",
             i, " must be a pair of integer ids [left, right], got ", p.dump().substr(0, 60));
    const int64_t a = p[0].get<int64_t>(), b = p[1].get<int64_t>();
    TZ_CHECK(a >= 0 && b >= 0 && a < kMaxBpeVocab && b < kMaxBpeVocab, source, ": merge ", i, " is (", a, ", ", b,
             "), ids must be in [0, ", 256 + i, ")");
    merges.push_back({int32_t(a), int32_t(b)});
  }
  BpeTokenizer tok(std::move(merges), source);
  const int64_t vocab = json_get<int64_t>(j, "vocab_size", source);
  TZ_CHECK(vocab == tok.vocab_size(), source, ": vocab_size ", vocab, " disagrees with its ", tok.merges().size(),
           " merges (256 bytes + merges = ", tok.vocab_size(), ")");
  return tok;
}

}  // namespace tz::data
