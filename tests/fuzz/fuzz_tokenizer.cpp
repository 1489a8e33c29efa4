// libFuzzer harness: the byte tokenizer and a BPE on any text and any ids, and the BPE loader
// on any definition.
// encode then decode gives the text back; decode_for_display always gives valid UTF-8; ids
// read from the input (8 bytes each) decode or raise tz::Error, and decode when all are
// in the vocabulary. The input read as a BPE definition (tokenizer.json) loads or raises
// tz::Error; one that loads round-trips the input too. Any other outcome is a bug.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/bpe.h"
#include "data/tokenizer.h"

namespace {

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = uint8_t(s[i]);
    int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (n < 0 || i + n >= s.size()) return false;
    uint32_t cp = n == 0 ? c : n == 1 ? c & 0x1F : n == 2 ? c & 0x0F : c & 0x07;
    for (int k = 1; k <= n; ++k) {
      const auto d = uint8_t(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const uint32_t min = n == 1 ? 0x80 : n == 2 ? 0x800 : n == 3 ? 0x10000 : 0;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// Every check on one tokenizer.
void check(const tz::data::Tokenizer& tok, const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::vector<int64_t> ids = tok.encode(text);
  if (tok.decode(ids) != text) __builtin_trap();
  if (!valid_utf8(tok.decode_for_display(ids))) __builtin_trap();

  std::vector<int64_t> raw(size / 8);
  if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * 8);
  bool known = true;
  for (int64_t id : raw) known = known && id >= 0 && id < tok.vocab_size();
  try {
    (void)tok.decode(raw);
    (void)tok.decode_for_display(raw);
  } catch (const tz::Error&) {
    if (known) __builtin_trap();
  }
}

// A BPE learned once, from text with words, digits, spaces, bytes >= 0x80 and a NUL.
const tz::data::BpeTokenizer& learned() {
  static const tz::data::BpeTokenizer tok = [] {
    std::string text;
    for (int i = 0; i < 200; ++i)
      text += "The dogs run " + std::to_string(i * 7) + " times,\n  \xC3\xA9t\xC3\xA9 " + std::string(1, '\0');
    return tz::data::BpeTokenizer::train(text, {.vocab_size = 400});
  }();
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check(tz::data::ByteTokenizer(), data, size);
  check(learned(), data, size);
  std::optional<tz::data::BpeTokenizer> loaded;
  try {
    loaded.emplace(tz::data::BpeTokenizer::from_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz"));
  } catch (const tz::Error&) {
    return 0;  // refused with a message: fine
  }
  check(*loaded, data, size);
  return 0;
}
