// Tokenizers: text <-> token ids. Two kinds, chosen at run time behind one interface:
//   bytes  ByteTokenizer: one token per byte (vocabulary 256), the default
//   bpe    BpeTokenizer (data/bpe.h): byte-level byte-pair encoding learned from a text
//
// Every tokenizer here starts from the 256 bytes, so any byte string encodes, and decode gives
// back exactly the bytes encoded, even ones that are not valid UTF-8 (a model can sample half
// a character). decode_for_display() is for printing such samples to a terminal: it keeps
// valid UTF-8 and writes every invalid byte as a \xNN escape.
//
// ByteTokenizer: "é" (two bytes in UTF-8) becomes two tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tz::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;  // "bytes" or "bpe": what a model file names
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  // Ids -> bytes. Throws tz::Error for an id outside [0, vocab_size()).
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  // The definition saved beside a model: "" for bytes, the merges (JSON) for BPE.
  virtual std::string to_json() const = 0;
  // Like decode, but invalid UTF-8 bytes become "\xNN" so the result is printable UTF-8.
  std::string decode_for_display(const std::vector<int64_t>& ids) const;
};

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int64_t kVocabSize = 256;
  std::string kind() const override { return "bytes"; }
  int64_t vocab_size() const override { return kVocabSize; }
  std::vector<int64_t> encode(std::string_view text) const override;  // each byte -> id in [0, 256)
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string to_json() const override { return ""; }
};

// The kinds this build has, and the one for a name and its saved definition (to_json(); empty
// for bytes). Errors (tz::Error) start with `source` (the file it came from): an unknown kind
// names the kinds and the nearest, a bad definition says what was expected.
const std::vector<std::string>& tokenizer_kinds();
std::shared_ptr<const Tokenizer> make_tokenizer(const std::string& kind, const std::string& definition,
                                                const std::string& source);
// Throws tz::Error unless `kind` is one of tokenizer_kinds(), suggesting the nearest; the
// message starts with `what`. tokenizer_kind_error: that message without it ("" when valid).
void check_tokenizer_kind(const std::string& kind, const std::string& what);
std::string tokenizer_kind_error(const std::string& kind);

// Length in bytes of the valid UTF-8 character starting at s[i], or 0 if the bytes there
// are not one (a stray continuation byte, an overlong form, a surrogate, past U+10FFFF, or
// a character cut off by the end of the string).
int utf8_char_length(std::string_view s, size_t i);
bool is_valid_utf8(std::string_view s);

}  // namespace tz::data
