#include "embed/text_model.h"

#include "models/weights.h"

namespace tz {

TextModel::TextModel(std::unique_ptr<models::LM> lm, std::shared_ptr<const Tokenizer> tokenizer, std::string path)
    : lm_(std::move(lm)), tokenizer_(std::move(tokenizer)), path_(std::move(path)) {}

TextModel TextModel::load(const std::string& path) {
  models::ModelFile file = models::read_model_file(path);
  std::shared_ptr<const Tokenizer> tokenizer =
      data::make_tokenizer(file.tokenizer.kind, file.tokenizer.definition, cat_str("load: '", path, "': tokenizer"));
  std::unique_ptr<models::LM> lm = models::load_lm(std::move(file));
  TZ_CHECK(lm->vocab() == tokenizer->vocab_size(), "load: '", path, "': the model has a vocabulary of ", lm->vocab(),
           " but its tokenizer '", tokenizer->kind(), "' has ", tokenizer->vocab_size());
  return TextModel(std::move(lm), std::move(tokenizer), path);
}

std::vector<int64_t> TextModel::generate_tokens(const std::vector<int64_t>& prompt, const SampleOptions& options,
                                                const std::function<bool(int64_t)>& on_token) {
  return models::generate(*lm_, prompt, options, on_token);
}

std::string TextModel::generate(std::string_view prompt, const SampleOptions& options,
                                const std::function<bool(std::string_view)>& on_text) {
  TZ_CHECK(!prompt.empty(), "generate: the prompt must not be empty");
  std::string text;
  Utf8Pieces pieces;
  bool go_on = true;
  models::generate(*lm_, tokenizer_->encode(prompt), options, [&](int64_t id) {
    const std::string piece = pieces.push(tokenizer_->decode({id}));
    text += piece;
    if (on_text && !piece.empty()) go_on = on_text(piece);
    return go_on;
  });
  const std::string rest = pieces.finish();
  text += rest;
  if (on_text && go_on && !rest.empty()) on_text(rest);
  return text;
}

namespace {
// Bytes a character needs from its lead byte (0: not a lead byte).
size_t utf8_needs(unsigned char b) {
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}
}  // namespace

std::string Utf8Pieces::push(std::string_view bytes) {
  pending_ += bytes;
  size_t i = 0;
  while (i < pending_.size()) {
    const int n = data::utf8_char_length(pending_, i);
    if (n > 0) {
      i += size_t(n);
      continue;
    }
    // Not a whole character here: wait if it may still become one (a lead byte followed by
    // continuation bytes only, fewer than it needs), else pass the byte on.
    const size_t need = utf8_needs(static_cast<unsigned char>(pending_[i]));
    bool may_complete = need > 0 && pending_.size() - i < need;
    for (size_t k = i + 1; may_complete && k < pending_.size(); ++k)
      may_complete = (static_cast<unsigned char>(pending_[k]) & 0xC0) == 0x80;
    if (may_complete) break;
    ++i;
  }
  std::string out = pending_.substr(0, i);
  pending_.erase(0, i);
  return out;
}

std::string Utf8Pieces::finish() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace tz
