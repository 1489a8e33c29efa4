#include "data/tokenizer.h"

#include "core/error.h"
#include "core/text.h"
#include "data/bpe.h"

namespace tz::data {

std::vector<int64_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids(text.size());
  // Cast through unsigned char: plain char may be signed, and byte 0xE9 must be id 233.
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    TZ_CHECK(ids[i] >= 0 && ids[i] < kVocabSize, "ByteTokenizer::decode: id ", ids[i], " at position ", i,
             " is outside the vocabulary [0, ", kVocabSize, ")");
    out[i] = static_cast<char>(static_cast<unsigned char>(ids[i]));
  }
  return out;
}

std::string Tokenizer::decode_for_display(const std::vector<int64_t>& ids) const {
  std::string bytes = decode(ids), out;
  static const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < bytes.size();) {
    int n = utf8_char_length(bytes, i);
    if (n > 0) {
      out.append(bytes, i, size_t(n));
      i += size_t(n);
    } else {
      unsigned char b = static_cast<unsigned char>(bytes[i++]);
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
    }
  }
  return out;
}

const std::vector<std::string>& tokenizer_kinds() {
  static const std::vector<std::string> kinds = {"bytes", "bpe"};
  return kinds;
}

std::string tokenizer_kind_error(const std::string& kind) {
  for (const std::string& k : tokenizer_kinds())
    if (k == kind) return "";
  const std::string near = nearest(kind, tokenizer_kinds());
  return cat_str("tokenizer '", kind.substr(0, 60), "' is not one of: ", join(tokenizer_kinds()),
                 near.empty() ? "" : cat_str(" (did you mean '", near, "'?)"));
}

void check_tokenizer_kind(const std::string& kind, const std::string& what) {
  const std::string error = tokenizer_kind_error(kind);
  TZ_CHECK(error.empty(), what, ": ", error);
}

std::shared_ptr<const Tokenizer> make_tokenizer(const std::string& kind, const std::string& definition,
                                                const std::string& source) {
  check_tokenizer_kind(kind, source);
  if (kind == "bytes") {
    TZ_CHECK(definition.empty(), source, ": the byte tokenizer has no definition, but one of ", definition.size(),
             " bytes came with it");
    return std::make_shared<ByteTokenizer>();
  }
  return std::make_shared<BpeTokenizer>(BpeTokenizer::from_json(definition, source));
}

// UTF-8 encodes a code point in 1-4 bytes: 0xxxxxxx, 110xxxxx 10xxxxxx, 1110xxxx 10xxxxxx
// 10xxxxxx, 11110xxx 10xxxxxx 10xxxxxx 10xxxxxx. A valid character also uses the shortest
// form, is not a UTF-16 surrogate (U+D800..U+DFFF) and is at most U+10FFFF.
int utf8_char_length(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  int n;
  uint32_t cp, min_cp;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2;
    cp = b0 & 0x1F;
    min_cp = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3;
    cp = b0 & 0x0F;
    min_cp = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4;
    cp = b0 & 0x07;
    min_cp = 0x10000;
  } else
    return 0;  // a continuation byte 10xxxxxx or 0xF8..0xFF cannot start a character
  if (i + size_t(n) > s.size()) return 0;
  for (int k = 1; k < n; ++k) {
    unsigned char b = byte(i + size_t(k));
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    int n = utf8_char_length(s, i);
    if (n == 0) return false;
    i += size_t(n);
  }
  return true;
}

}  // namespace tz::data
