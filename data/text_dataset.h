// TextDataset: a tokenized text (bytes by default, or any data::Tokenizer), split by position
// into training and validation tokens, sampled as random windows for next-token prediction.
//
// The split is by position, not by random windows: the first (1 - val_fraction) of the
// bytes train, the rest validate, each part tokenized on its own (no token spans the cut), and
// no validation window reaches back into the training tokens (or the other way round), so
// validation loss measures text the model never saw. A tokenizer learned from the text (BPE)
// is learned from the training bytes alone: text.substr(0, train_bytes(text.size(), f)).
//
//   TextDataset ds = TextDataset::from_file("shakespeare.txt", {.seq_len = 128});
//   Batch b = ds.sample(Split::train, 32, 128, gen);   // inputs, targets: i64 [32, 128]
//
// unigram_entropy_bits() is the loss of the best model that ignores context (it predicts
// each byte from its frequency in the training split): a model whose validation loss is
// not below it has learned nothing about context.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/batch.h"
#include "data/tokenizer.h"

namespace tz::data {

enum class Split { train, val };
const char* split_name(Split split);

struct TextDatasetOptions {
  double val_fraction = 0.1;  // last fraction of the tokens held out, in [0, 1)
  // If > 0, checked when the text is loaded: the training split (and the validation split,
  // when val_fraction > 0) must hold at least seq_len + 1 tokens (one window).
  int64_t seq_len = 0;
};

class TextDataset {
 public:
  friend class TextStreams;
  // Reads the whole file as bytes. Errors name the path: missing, unreadable, empty, or
  // too short for options.seq_len.
  // A null tokenizer is the byte tokenizer.
  static TextDataset from_file(const std::string& path, const TextDatasetOptions& options = {},
                               std::shared_ptr<const Tokenizer> tokenizer = nullptr);
  // `source` names the text in error messages.
  static TextDataset from_string(const std::string& text, const TextDatasetOptions& options = {},
                                 const std::string& source = "<string>",
                                 std::shared_ptr<const Tokenizer> tokenizer = nullptr);
  // The bytes of a text of `bytes` bytes that the training split holds.
  static int64_t train_bytes(int64_t bytes, double val_fraction);

  int64_t vocab_size() const { return tokenizer_->vocab_size(); }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::shared_ptr<const Tokenizer>& tokenizer_ptr() const { return tokenizer_; }
  const std::string& source() const { return source_; }
  int64_t num_tokens() const { return int64_t(tokens_.size()); }
  int64_t num_tokens(Split split) const;
  // The bytes of the text in a split (with bytes as tokens: its tokens), for bits per byte.
  int64_t num_bytes(Split split) const { return split == Split::train ? train_bytes_ : val_bytes_; }
  // Split boundaries in the token stream: train = [0, val_begin()), val = [val_begin(), end).
  int64_t val_begin() const { return val_begin_; }
  const std::vector<int64_t>& tokens() const { return tokens_; }

  // B random windows of T + 1 consecutive tokens from one split: inputs = window[0, T),
  // targets = window[1, T + 1). Each window lies entirely inside the split. Deterministic
  // for the generator's state (which it advances by B).
  Batch sample(Split split, int64_t batch, int64_t seq_len, Generator& gen) const;

  // Entropy of the token frequencies of the training split (bits, or nats = bits * ln 2).
  double unigram_entropy_bits() const { return unigram_entropy_bits_; }
  double unigram_entropy_nats() const;

 private:
  TextDataset() = default;
  void check_split_holds(Split split, int64_t seq_len, const char* op) const;

  std::shared_ptr<const Tokenizer> tokenizer_;
  std::string source_;
  int64_t train_bytes_ = 0, val_bytes_ = 0;
  std::vector<int64_t> tokens_;  // i64 like the batches (8 bytes a token: fine for a few MB)
  int64_t val_begin_ = 0;
  double unigram_entropy_bits_ = 0;
};

// Training across segments (Transformer-XL): each of `batch` rows reads one split as a stream
// from a random start, one segment of T tokens after the other (inputs t.., targets t+1..),
// so that a model carrying memory sees each row's previous segment before the next. A row
// that reaches the split's end starts over at a new random start: a new document, reported
// in `restarted` so that its memory is reset. Deterministic for the generator's state; the
// cursors are saved with a run (cursors(), set_cursors()).
class TextStreams {
 public:
  TextStreams(const TextDataset& data, Split split, int64_t batch, int64_t seq_len, Generator& gen);
  Batch next(Generator& gen, std::vector<int64_t>* restarted = nullptr);
  // The position of each row's next segment (i64 [B]), and back (checked against the split).
  Tensor cursors() const;
  void set_cursors(const Tensor& cursors);

 private:
  const TextDataset& data_;
  int64_t lo_ = 0, hi_ = 0, seq_len_ = 0;  // the split [lo, hi)
  std::vector<int64_t> cursor_;
};

// Entropy in bits of the unigram distribution of `tokens` (ids in [0, vocab_size)).
double unigram_entropy_bits(const std::vector<int64_t>& tokens, int64_t vocab_size);

}  // namespace tz::data
