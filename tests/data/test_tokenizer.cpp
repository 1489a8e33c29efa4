// ByteTokenizer: round trips over ASCII, multi-byte UTF-8 and invalid byte sequences.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "data/tokenizer.h"

using namespace tz::data;

TEST_CASE("tokenizer: vocabulary of 256 bytes and ASCII round trip") {
  ByteTokenizer tok;
  CHECK(tok.vocab_size() == 256);
  std::string s = "Hello, world!\n\tThe dogs run.";
  std::vector<int64_t> ids = tok.encode(s);
  REQUIRE(ids.size() == s.size());
  CHECK(ids[0] == 'H');
  CHECK(tok.decode(ids) == s);
  CHECK(tok.encode("").empty());
  CHECK(tok.decode({}).empty());
}

TEST_CASE("tokenizer: multi-byte UTF-8 becomes one token per byte and round trips") {
  ByteTokenizer tok;
  std::string s = "h\xC3\xA9llo \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x99\x82";  // héllo 日本 🙂
  std::vector<int64_t> ids = tok.encode(s);
  REQUIRE(ids.size() == 1 + 2 + 4 + 6 + 1 + 4);  // h é(2) "llo " 日本(3+3) " " 🙂(4)
  CHECK(ids[1] == 0xC3);                         // bytes >= 0x80 map to ids >= 128, not negative
  CHECK(ids[2] == 0xA9);
  for (int64_t id : ids) CHECK((id >= 0 && id < 256));
  CHECK(tok.decode(ids) == s);
  CHECK(is_valid_utf8(s));
  CHECK(tok.decode_for_display(ids) == s);  // valid UTF-8 is shown unchanged
}

TEST_CASE("tokenizer: every byte value and invalid UTF-8 decode without throwing") {
  ByteTokenizer tok;
  std::vector<int64_t> all(256);
  for (int i = 0; i < 256; ++i) all[size_t(i)] = i;
  std::string bytes = tok.decode(all);
  REQUIRE(bytes.size() == 256);
  CHECK(tok.encode(bytes) == all);
  CHECK_FALSE(is_valid_utf8(bytes));
  CHECK_NOTHROW(tok.decode_for_display(all));

  // A stray continuation byte, 0xFF, a lead byte followed by ASCII, a cut-off character.
  std::vector<int64_t> bad = {0x80, 'a', 0xFF, 0xC3, '(', 0xE6, 0x97};
  std::string raw = tok.decode(bad);
  CHECK(tok.encode(raw) == bad);  // raw bytes are kept as they are
  CHECK(tok.decode_for_display(bad) == "\\x80a\\xff\\xc3(\\xe6\\x97");
}

TEST_CASE("tokenizer: UTF-8 validity rules") {
  CHECK(utf8_char_length("a", 0) == 1);
  CHECK(utf8_char_length("\xC3\xA9", 0) == 2);
  CHECK(utf8_char_length("\xE6\x97\xA5", 0) == 3);
  CHECK(utf8_char_length("\xF0\x9F\x99\x82", 0) == 4);
  CHECK(utf8_char_length("\xC0\xAF", 0) == 0);          // overlong encoding of '/'
  CHECK(utf8_char_length("\xED\xA0\x80", 0) == 0);      // UTF-16 surrogate U+D800
  CHECK(utf8_char_length("\xF4\x90\x80\x80", 0) == 0);  // above U+10FFFF
  CHECK(utf8_char_length("\xE6\x97", 0) == 0);          // cut off
  CHECK(utf8_char_length("\xA9", 0) == 0);              // continuation byte first
}

TEST_CASE("tokenizer: ids outside 0..255 are errors that name the id") {
  ByteTokenizer tok;
  CHECK_THROWS_AS(tok.decode({65, 256}), tz::Error);
  CHECK_THROWS_WITH(tok.decode({65, 256}), doctest::Contains("id 256 at position 1"));
  CHECK_THROWS_AS(tok.decode({-1}), tz::Error);
}
