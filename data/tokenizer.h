// ByteTokenizer: text <-> token ids, one token per UTF-8 byte (vocabulary 256).
//
// The simplest tokenizer that handles any text: "é" (two bytes in UTF-8) becomes two
// tokens. Decoding never fails on a byte sequence, even one that is not valid UTF-8 (a
// model can sample half a character): the bytes are returned as they are.
// decode_for_display() is for printing such samples to a terminal: it keeps valid UTF-8
// and writes every invalid byte as a \xNN escape.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tz::data {

class ByteTokenizer {
 public:
  static constexpr int64_t kVocabSize = 256;
  int64_t vocab_size() const { return kVocabSize; }

  std::vector<int64_t> encode(std::string_view text) const;  // each byte -> id in [0, 256)
  // Ids -> bytes. Throws tz::Error only for an id outside [0, 256) (it is not a byte).
  std::string decode(const std::vector<int64_t>& ids) const;
  // Like decode, but invalid UTF-8 bytes become "\xNN" so the result is printable UTF-8.
  std::string decode_for_display(const std::vector<int64_t>& ids) const;
};

// Length in bytes of the valid UTF-8 character starting at s[i], or 0 if the bytes there
// are not one (a stray continuation byte, an overlong form, a surrogate, past U+10FFFF, or
// a character cut off by the end of the string).
int utf8_char_length(std::string_view s, size_t i);
bool is_valid_utf8(std::string_view s);

}  // namespace tz::data
