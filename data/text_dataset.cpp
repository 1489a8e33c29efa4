#include "data/text_dataset.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/creation.h"
#include "core/error.h"
#include "core/text.h"

namespace tz::data {

const char* split_name(Split split) { return split == Split::train ? "train" : "val"; }

TextDataset TextDataset::from_file(const std::string& path, const TextDatasetOptions& options,
                                   std::shared_ptr<const Tokenizer> tokenizer) {
  std::error_code ec;
  TZ_CHECK(std::filesystem::exists(path, ec), "TextDataset: no file at '", path, "'");
  std::string text = read_file(path, "TextDataset");
  TZ_CHECK(!text.empty(), "TextDataset: '", path, "' is empty");
  return from_string(text, options, path, std::move(tokenizer));
}

int64_t TextDataset::train_bytes(int64_t bytes, double val_fraction) {
  return bytes - int64_t(std::llround(double(bytes) * val_fraction));
}

TextDataset TextDataset::from_string(const std::string& text, const TextDatasetOptions& options,
                                     const std::string& source, std::shared_ptr<const Tokenizer> tokenizer) {
  TZ_CHECK(options.val_fraction >= 0 && options.val_fraction < 1, "TextDataset: val_fraction must be in [0, 1), got ",
           options.val_fraction);
  TZ_CHECK(options.seq_len >= 0, "TextDataset: seq_len must be >= 0, got ", options.seq_len);
  TZ_CHECK(!text.empty(), "TextDataset: the text from ", source, " is empty");
  TextDataset ds;
  ds.source_ = source;
  ds.tokenizer_ = tokenizer ? std::move(tokenizer) : std::make_shared<ByteTokenizer>();
  const int64_t cut = train_bytes(int64_t(text.size()), options.val_fraction);
  ds.train_bytes_ = cut;
  ds.val_bytes_ = int64_t(text.size()) - cut;
  ds.tokens_ = ds.tokenizer_->encode(std::string_view(text).substr(0, size_t(cut)));
  ds.val_begin_ = ds.num_tokens();
  const std::vector<int64_t> val = ds.tokenizer_->encode(std::string_view(text).substr(size_t(cut)));
  ds.tokens_.insert(ds.tokens_.end(), val.begin(), val.end());
  if (options.seq_len > 0) {
    ds.check_split_holds(Split::train, options.seq_len, "TextDataset");
    if (ds.val_bytes_ > 0) ds.check_split_holds(Split::val, options.seq_len, "TextDataset");
  }
  std::vector<int64_t> train(ds.tokens_.begin(), ds.tokens_.begin() + ds.val_begin_);
  ds.unigram_entropy_bits_ = data::unigram_entropy_bits(train, ds.vocab_size());
  return ds;
}

int64_t TextDataset::num_tokens(Split split) const {
  return split == Split::train ? val_begin_ : num_tokens() - val_begin_;
}

void TextDataset::check_split_holds(Split split, int64_t seq_len, const char* op) const {
  TZ_CHECK(num_tokens(split) >= seq_len + 1, op, ": ", source_, " is too short: the ", split_name(split), " split has ",
           num_tokens(split), " tokens (of ", num_tokens(), " in all), but a window of seq_len ", seq_len, " needs ",
           seq_len + 1);
}

Batch TextDataset::sample(Split split, int64_t batch, int64_t seq_len, Generator& gen) const {
  TZ_CHECK(batch > 0 && seq_len > 0, "TextDataset::sample: batch and seq_len must be > 0, got ", batch, " and ",
           seq_len);
  check_split_holds(split, seq_len, "TextDataset::sample");
  int64_t lo = split == Split::train ? 0 : val_begin_;
  int64_t hi = split == Split::train ? val_begin_ : num_tokens();  // end, exclusive
  Tensor inputs = empty({batch, seq_len}, DType::i64);
  Tensor targets = empty({batch, seq_len}, DType::i64);
  int64_t* x = inputs.data<int64_t>();
  int64_t* y = targets.data<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    // The window [start, start + T] (T + 1 tokens) must end before hi.
    int64_t start = gen.randint(lo, hi - seq_len);
    const int64_t* w = tokens_.data() + start;
    for (int64_t t = 0; t < seq_len; ++t) {
      x[b * seq_len + t] = w[t];
      y[b * seq_len + t] = w[t + 1];
    }
  }
  return {inputs, targets};
}

TextStreams::TextStreams(const TextDataset& data, Split split, int64_t batch, int64_t seq_len, Generator& gen)
    : data_(data), seq_len_(seq_len) {
  TZ_CHECK(batch > 0 && seq_len > 0, "TextStreams: batch and seq_len must be > 0, got ", batch, " and ", seq_len);
  data.check_split_holds(split, seq_len, "TextStreams");
  lo_ = split == Split::train ? 0 : data.val_begin();
  hi_ = split == Split::train ? data.val_begin() : data.num_tokens();
  for (int64_t b = 0; b < batch; ++b) cursor_.push_back(gen.randint(lo_, hi_ - seq_len));
}

Batch TextStreams::next(Generator& gen, std::vector<int64_t>* restarted) {
  const int64_t B = int64_t(cursor_.size()), T = seq_len_;
  Tensor inputs = empty({B, T}, DType::i64), targets = empty({B, T}, DType::i64);
  int64_t* x = inputs.data<int64_t>();
  int64_t* y = targets.data<int64_t>();
  if (restarted) restarted->clear();
  for (int64_t b = 0; b < B; ++b) {
    if (cursor_[b] + T >= hi_) {  // the segment and its last target must fit: a new document
      cursor_[b] = gen.randint(lo_, hi_ - T);
      if (restarted) restarted->push_back(b);
    }
    const int64_t* w = data_.tokens().data() + cursor_[b];
    for (int64_t t = 0; t < T; ++t) {
      x[b * T + t] = w[t];
      y[b * T + t] = w[t + 1];
    }
    cursor_[b] += T;
  }
  return {inputs, targets};
}

Tensor TextStreams::cursors() const { return from_vector(cursor_, {int64_t(cursor_.size())}); }

void TextStreams::set_cursors(const Tensor& c) {
  TZ_CHECK(c.defined(), "TextStreams: expected cursors i64 [", cursor_.size(), "], got an undefined tensor");
  TZ_CHECK(c.dim() == 1 && c.size(0) == int64_t(cursor_.size()) && c.dtype() == DType::i64,
           "TextStreams: expected cursors i64 [", cursor_.size(), "], got ", dtype_name(c.dtype()), " ", c.shape());
  std::vector<int64_t> v = c.contiguous().to_vector<int64_t>();
  for (int64_t x : v)
    TZ_CHECK(x >= lo_ && x < hi_, "TextStreams: cursor ", x, " outside the split [", lo_, ", ", hi_, ")");
  cursor_ = v;
}

double TextDataset::unigram_entropy_nats() const { return unigram_entropy_bits_ * std::log(2.0); }

double unigram_entropy_bits(const std::vector<int64_t>& tokens, int64_t vocab_size) {
  if (tokens.empty()) return 0;
  std::vector<int64_t> counts(size_t(vocab_size), 0);
  for (int64_t id : tokens) {
    TZ_CHECK(id >= 0 && id < vocab_size, "unigram_entropy_bits: token ", id, " outside [0, ", vocab_size, ")");
    ++counts[size_t(id)];
  }
  // H = -sum_v p_v log2 p_v over the tokens that occur.
  double h = 0, n = double(tokens.size());
  for (int64_t c : counts)
    if (c > 0) h -= double(c) / n * std::log2(double(c) / n);
  return h;
}

}  // namespace tz::data
