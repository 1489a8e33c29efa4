// BpeTokenizer: the pre-split, merges learned on a tiny text (worked out by hand), the fast
// trainer against a plain one that recounts every pair, encode against applying the merges
// one by one, round trips on random bytes, save and load, and broken definitions.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/bpe.h"
#include "data/grammar.h"

using namespace tz::data;

namespace {

std::vector<std::string> pieces_of(const std::string& text) {
  std::vector<std::string> out;
  for (std::string_view p : pre_split(text)) out.emplace_back(p);
  return out;
}

// The reference trainer: count every pair of every distinct piece again before each merge.
std::vector<BpeTokenizer::Merge> train_plain(const std::string& text, int64_t vocab) {
  std::map<std::string, int64_t> freq;
  for (std::string_view p : pre_split(text)) ++freq[std::string(p)];
  std::vector<std::pair<std::vector<int32_t>, int64_t>> words;
  for (auto& [w, c] : freq) {
    std::vector<int32_t> sym;
    for (char ch : w) sym.push_back(static_cast<unsigned char>(ch));
    words.push_back({sym, c});
  }
  std::vector<BpeTokenizer::Merge> merges;
  while (256 + int64_t(merges.size()) < vocab) {
    std::map<BpeTokenizer::Merge, int64_t> count;  // ordered by (left, right): ties to the smaller
    for (auto& [sym, c] : words)
      for (size_t k = 0; k + 1 < sym.size(); ++k) count[{sym[k], sym[k + 1]}] += c;
    BpeTokenizer::Merge best{-1, -1};
    int64_t best_count = 0;
    for (auto& [p, c] : count)
      if (c > best_count) best = p, best_count = c;
    if (best_count < 2) break;
    const int32_t z = 256 + int32_t(merges.size());
    merges.push_back(best);
    for (auto& [sym, c] : words) {
      std::vector<int32_t> out;
      for (size_t k = 0; k < sym.size();) {
        if (k + 1 < sym.size() && sym[k] == best.first && sym[k + 1] == best.second) {
          out.push_back(z);
          k += 2;
        } else {
          out.push_back(sym[k++]);
        }
      }
      sym = out;
    }
  }
  return merges;
}

// Encoding by applying every merge in order to every piece: the definition encode must match.
std::vector<int64_t> encode_plain(const BpeTokenizer& tok, const std::string& text) {
  std::vector<int64_t> ids;
  for (std::string_view p : pre_split(text)) {
    std::vector<int64_t> sym;
    for (char ch : p) sym.push_back(static_cast<unsigned char>(ch));
    for (size_t m = 0; m < tok.merges().size(); ++m) {
      const auto [a, b] = tok.merges()[m];
      std::vector<int64_t> out;
      for (size_t k = 0; k < sym.size();) {
        if (k + 1 < sym.size() && sym[k] == a && sym[k + 1] == b) {
          out.push_back(256 + int64_t(m));
          k += 2;
        } else {
          out.push_back(sym[k++]);
        }
      }
      sym = out;
    }
    ids.insert(ids.end(), sym.begin(), sym.end());
  }
  return ids;
}

std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

}  // namespace

TEST_CASE("bpe: pre_split keeps a space with the word after it and cuts long runs") {
  CHECK(pieces_of("Hello world  42!\n  x") ==
        std::vector<std::string>{"Hello", " world", " ", " 42", "!", "\n ", " x"});
  CHECK(pieces_of("a  ") == std::vector<std::string>{"a", "  "});  // nothing follows: the run stays whole
  CHECK(pieces_of(" ...") == std::vector<std::string>{" ..."});
  CHECK(pieces_of("caf\xC3\xA9 na\xC3\xAFve") == std::vector<std::string>{"caf\xC3\xA9", " na\xC3\xAFve"});
  CHECK(pieces_of(std::string("a\0b", 3)) == std::vector<std::string>{"a", std::string(1, '\0'), "b"});
  const std::vector<std::string> run = pieces_of(std::string(150, 'a'));
  CHECK(run == std::vector<std::string>{std::string(64, 'a'), std::string(64, 'a'), std::string(22, 'a')});
  CHECK(pre_split("").empty());
  // The pieces always add up to the text.
  std::mt19937 rng(7);
  for (int i = 0; i < 50; ++i) {
    const std::string s = random_bytes(rng, rng() % 300);
    std::string joined;
    for (std::string_view p : pre_split(s)) {
      CHECK(!p.empty());
      CHECK(p.size() <= kMaxPieceBytes);
      joined += p;
    }
    CHECK(joined == s);
  }
}

TEST_CASE("bpe: the merges learned on a tiny text are the ones worked out by hand") {
  // Pieces "aaab", " aab", " ab". Pair counts: (a,a) 3, (a,b) 3, (' ',a) 2: a tie, so the
  // smaller pair (97, 97) first, merged left to right: "aaab" -> [aa, a, b], " aab" -> [' ',
  // aa, b]. Then (a,b) occurs twice (in "aaab" and " ab"): merge 1. Every pair left occurs
  // once, so training stops at 258 tokens although 300 were asked.
  const BpeTokenizer tok = BpeTokenizer::train("aaab aab ab", {.vocab_size = 300});
  CHECK(tok.merges() == std::vector<BpeTokenizer::Merge>{{97, 97}, {97, 98}});
  CHECK(tok.vocab_size() == 258);
  CHECK(tok.token_bytes(256) == "aa");
  CHECK(tok.token_bytes(257) == "ab");
  CHECK(tok.encode("aaab") == std::vector<int64_t>{256, 257});
  CHECK(tok.encode("aaa") == std::vector<int64_t>{256, 97});
  CHECK(tok.encode("aaaa ab") == std::vector<int64_t>{256, 256, 32, 257});
  CHECK(tok.encode("ba") == std::vector<int64_t>{98, 97});
  // The vocabulary bounds the merges.
  CHECK(BpeTokenizer::train("aaab aab ab", {.vocab_size = 257}).merges() == std::vector<BpeTokenizer::Merge>{{97, 97}});
  CHECK(BpeTokenizer::train("aaab aab ab", {.vocab_size = 256}).merges().empty());
  // Counts weigh by how often a piece occurs: (x,y) in "xy" once and " xy" three times (4)
  // beats (' ',a) and (a,b) (3 each).
  CHECK(BpeTokenizer::train("xy xy xy xy ab ab ab", {.vocab_size = 257}).merges() ==
        std::vector<BpeTokenizer::Merge>{{120, 121}});
}

TEST_CASE("bpe: the incremental trainer learns the merges that recounting every pair learns") {
  const std::string text = grammar_text(60000, 3) + "  \n\n\t1234 1234 ==== ====\n";
  for (int64_t vocab : {300, 700}) {
    CAPTURE(vocab);
    int64_t calls = 0, last = -1;
    const BpeTokenizer fast =
        BpeTokenizer::train(text, {.vocab_size = vocab, .on_progress = [&](int64_t done, int64_t) {
                                     CHECK(done >= last);
                                     last = done;
                                     ++calls;
                                   }});
    CHECK(fast.merges() == train_plain(text, vocab));
    CHECK(calls > 0);
    CHECK(last == int64_t(fast.merges().size()));
  }
}

TEST_CASE("bpe: decode(encode(x)) == x for random byte strings and edge cases") {
  std::mt19937 rng(11);
  // A tokenizer that also learned merges over bytes >= 0x80 and NULs.
  std::string training = grammar_text(40000, 5);
  for (int i = 0; i < 200; ++i) training += random_bytes(rng, 8) + " \xC3\xA9t\xC3\xA9 " + std::string(3, '\0');
  const BpeTokenizer tok = BpeTokenizer::train(training, {.vocab_size = 600});
  REQUIRE(tok.vocab_size() == 600);
  std::vector<std::string> cases = {"",
                                    std::string(1, '\0'),
                                    std::string(100, '\0'),
                                    "\xff\xfe\xfd",
                                    "\xC3",                  // a character cut off
                                    "\xED\xA0\x80",          // a surrogate
                                    "\xC0\xAF",              // overlong
                                    std::string(1000, ' '),  // one long run, cut into pieces
                                    std::string(200, 'e') + "\n\n\n" + std::string(70, '9'),
                                    " \xC3\xA9t\xC3\xA9 \xC3\xA9t\xC3\xA9",
                                    "The dogs run.\r\n\tThe cat\x01\x02 sleeps."};
  std::string all(256, '\0');
  for (int b = 0; b < 256; ++b) all[size_t(b)] = static_cast<char>(b);
  cases.push_back(all);
  for (int i = 0; i < 300; ++i) cases.push_back(random_bytes(rng, rng() % 400));
  for (int i = 0; i < 100; ++i) {  // text mixed with random bytes
    const std::string g = grammar_text(2000, uint64_t(i));
    const size_t at = rng() % g.size();
    cases.push_back(g.substr(0, at) + random_bytes(rng, rng() % 20) + g.substr(at));
  }
  size_t merged = 0;
  for (const std::string& s : cases) {
    const std::vector<int64_t> ids = tok.encode(s);
    for (int64_t id : ids) REQUIRE((id >= 0 && id < tok.vocab_size()));
    REQUIRE(tok.decode(ids) == s);
    CHECK(ids == encode_plain(tok, s));
    CHECK(ids == tok.encode(s));  // deterministic
    merged += s.size() - ids.size();
  }
  CHECK(merged > 0);  // the merges were used, not only the bytes
  CHECK(tok.decode_for_display(tok.encode("\xff")) == "\\xff");
  CHECK_THROWS_WITH_AS(tok.decode({600}), doctest::Contains("outside the vocabulary [0, 600)"), tz::Error);
  CHECK_THROWS_AS(tok.decode({-1}), tz::Error);
}

TEST_CASE("bpe: saved and loaded, a tokenizer encodes the same") {
  const std::string text = grammar_text(50000, 9);
  const BpeTokenizer tok = BpeTokenizer::train(text, {.vocab_size = 512});
  const BpeTokenizer back = BpeTokenizer::from_json(tok.to_json(), "test");
  CHECK(back.merges() == tok.merges());
  CHECK(back.vocab_size() == 512);
  CHECK(back.encode(text) == tok.encode(text));
  CHECK(back.to_json() == tok.to_json());
  // Through the factory, as a run or a model file reads it.
  const auto made = make_tokenizer("bpe", tok.to_json(), "test");
  CHECK(made->kind() == "bpe");
  CHECK(made->encode(text) == tok.encode(text));
  CHECK(make_tokenizer("bytes", "", "test")->vocab_size() == 256);
  // Fewer tokens than bytes on text like the training text.
  CHECK(tok.encode(text).size() * 2 < text.size());
}

TEST_CASE("bpe: a broken definition, a bad vocabulary or an unknown kind is named") {
  auto refused = [](const std::string& json, const char* says) {
    CAPTURE(json);
    CHECK_THROWS_WITH_AS(BpeTokenizer::from_json(json, "tok.json"), doctest::Contains(says), tz::Error);
  };
  const std::string head = R"({"format": "tensorzoo-bpe", "version": 1, "pre_split": "bytes-v1", )";
  refused("not json", "tok.json");
  refused("[1, 2]", "expected a BPE tokenizer");
  refused(R"({"format": "other", "version": 1, "pre_split": "bytes-v1", "vocab_size": 256, "merges": []})",
          "format 'other', expected 'tensorzoo-bpe'");
  refused(head + R"("vocab_size": 256})", "no 'merges'");
  refused(head + R"("vocab_size": 257, "merges": [[1, 256]]})", "merge 0 is (1, 256)");
  refused(head + R"("vocab_size": 258, "merges": [[1, 2], [1, 2]]})", "repeats merge 0");
  refused(head + R"("vocab_size": 300, "merges": [[1, 2]]})", "vocab_size 300 disagrees with its 1 merges");
  refused(head + R"("vocab_size": 257, "merges": [[1, "x"]]})", "must be a pair of integer ids");
  refused(head + R"("vocab_size": 256, "merges": [], "extra": 1})", "unknown key 'extra'");
  // Each merge doubling the last token: refused before its bytes grow past a piece.
  std::string doubling = head + R"("vocab_size": 263, "merges": [[97, 97])";
  for (int i = 0; i < 6; ++i) doubling += ", [" + std::to_string(256 + i) + ", " + std::to_string(256 + i) + "]";
  refused(doubling + "]}", "longer than any piece of text");
  CHECK_THROWS_WITH_AS(BpeTokenizer::train("abc", {.vocab_size = 100}), doctest::Contains("must be in [256, 262144]"),
                       tz::Error);
  CHECK_THROWS_AS(BpeTokenizer::train("abc", {.vocab_size = kMaxBpeVocab + 1}), tz::Error);
  CHECK_THROWS_WITH_AS(make_tokenizer("bep", "", "run"), doctest::Contains("(did you mean 'bpe'?)"), tz::Error);
  CHECK_THROWS_WITH_AS(make_tokenizer("sentencepiece", "", "run"),
                       doctest::Contains("tokenizer 'sentencepiece' is not one of: bytes, bpe"), tz::Error);
  CHECK_THROWS_WITH_AS(make_tokenizer("bytes", "{}", "run"), doctest::Contains("has no definition"), tz::Error);
}
