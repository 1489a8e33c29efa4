// TextDataset: windows line up with the text, splits do not overlap, sampling is
// deterministic, and bad inputs give errors that name the file.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/random.h"
#include "data/text_dataset.h"

using namespace tz;
using namespace tz::data;

namespace {

// Random bytes: any 8 consecutive tokens occur once, so a window's start can be found.
std::string random_text(int64_t n, uint64_t seed) {
  Generator g(seed);
  std::string s(size_t(n), ' ');
  for (auto& c : s) c = char(g.randint(0, 256));
  return s;
}

// Start of each row's window (inputs then the last target) in the token stream; -1 if none.
std::vector<int64_t> window_starts(const TextDataset& ds, const Batch& b) {
  const int64_t B = b.inputs.size(0), T = b.inputs.size(1);
  std::vector<int64_t> x = b.inputs.to_vector<int64_t>(), y = b.targets.to_vector<int64_t>();
  std::vector<int64_t> starts;
  for (int64_t r = 0; r < B; ++r) {
    std::vector<int64_t> w(x.begin() + r * T, x.begin() + (r + 1) * T);
    w.push_back(y[size_t(r * T + T - 1)]);
    auto it = std::search(ds.tokens().begin(), ds.tokens().end(), w.begin(), w.end());
    starts.push_back(it == ds.tokens().end() ? -1 : int64_t(it - ds.tokens().begin()));
  }
  return starts;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("tz_data_test_" + name)).string();
}

}  // namespace

TEST_CASE("text dataset: targets are the inputs shifted by one and windows come from the text") {
  TextDataset ds = TextDataset::from_string(random_text(4000, 1));
  Generator gen(7);
  Batch b = ds.sample(Split::train, 16, 32, gen);
  REQUIRE(b.inputs.shape() == Shape{16, 32});
  REQUIRE(b.targets.shape() == Shape{16, 32});
  CHECK(b.inputs.dtype() == DType::i64);
  CHECK(b.targets.dtype() == DType::i64);
  std::vector<int64_t> x = b.inputs.to_vector<int64_t>(), y = b.targets.to_vector<int64_t>();
  for (int64_t r = 0; r < 16; ++r)
    for (int64_t t = 0; t + 1 < 32; ++t) CHECK(y[size_t(r * 32 + t)] == x[size_t(r * 32 + t + 1)]);
  for (int64_t s : window_starts(ds, b)) CHECK(s >= 0);
}

TEST_CASE("text dataset: split by position and no window crosses the boundary") {
  TextDataset ds = TextDataset::from_string(random_text(4000, 2), {.val_fraction = 0.25});
  CHECK(ds.num_tokens() == 4000);
  CHECK(ds.val_begin() == 3000);
  CHECK(ds.num_tokens(Split::train) == 3000);
  CHECK(ds.num_tokens(Split::val) == 1000);
  const int64_t T = 64;
  Generator gen(3);
  int64_t min_val = 1 << 30, max_train_end = 0;
  for (int rep = 0; rep < 20; ++rep) {
    for (int64_t s : window_starts(ds, ds.sample(Split::val, 32, T, gen))) {
      REQUIRE(s >= 0);
      min_val = std::min(min_val, s);
      CHECK(s + T < ds.num_tokens());  // last target inside the text
    }
    for (int64_t s : window_starts(ds, ds.sample(Split::train, 32, T, gen))) {
      REQUIRE(s >= 0);
      max_train_end = std::max(max_train_end, s + T);  // index of the last target
    }
  }
  CHECK(min_val >= ds.val_begin());       // validation never reads training tokens
  CHECK(max_train_end < ds.val_begin());  // training never reads validation tokens
  // Windows reach both ends of their split (sampling is not biased away from the edges).
  CHECK(min_val < ds.val_begin() + 100);
  CHECK(max_train_end > ds.val_begin() - 100);
}

TEST_CASE("text dataset: sampling is deterministic for the generator state") {
  TextDataset ds = TextDataset::from_string(random_text(2000, 3));
  Generator g1(42), g2(42), g3(43);
  Batch a = ds.sample(Split::train, 8, 16, g1), b = ds.sample(Split::train, 8, 16, g2);
  Batch c = ds.sample(Split::train, 8, 16, g3);
  CHECK(a.inputs.to_vector<int64_t>() == b.inputs.to_vector<int64_t>());
  CHECK(a.targets.to_vector<int64_t>() == b.targets.to_vector<int64_t>());
  CHECK(a.inputs.to_vector<int64_t>() != c.inputs.to_vector<int64_t>());
  // The generator advanced, so the next batch differs; restoring its state repeats it.
  Generator g4(42);
  g4.set_state(g1.seed(), g1.counter());
  Batch d = ds.sample(Split::train, 8, 16, g1), e = ds.sample(Split::train, 8, 16, g4);
  CHECK(d.inputs.to_vector<int64_t>() != a.inputs.to_vector<int64_t>());
  CHECK(d.inputs.to_vector<int64_t>() == e.inputs.to_vector<int64_t>());
}

TEST_CASE("text dataset: reads a file as bytes") {
  std::string path = temp_path("utf8.txt");
  std::string text = "Caf\xC3\xA9 au lait.\nThe dogs run.\n";
  { std::ofstream(path, std::ios::binary) << text; }
  TextDataset ds = TextDataset::from_file(path, {.val_fraction = 0});
  CHECK(ds.source() == path);
  CHECK(ds.tokens() == ByteTokenizer().encode(text));
  CHECK(ds.num_tokens(Split::val) == 0);
  std::filesystem::remove(path);
}

TEST_CASE("text dataset: errors name the path and the sizes") {
  std::string missing = temp_path("does_not_exist.txt");
  CHECK_THROWS_WITH_AS(TextDataset::from_file(missing), doctest::Contains(missing.c_str()), tz::Error);

  std::string empty_path = temp_path("empty.txt");
  { std::ofstream(empty_path, std::ios::binary); }
  CHECK_THROWS_WITH_AS(TextDataset::from_file(empty_path), doctest::Contains((empty_path + "' is empty").c_str()),
                       tz::Error);
  std::filesystem::remove(empty_path);

  std::string dir = std::filesystem::temp_directory_path().string();
  CHECK_THROWS_WITH_AS(TextDataset::from_file(dir), doctest::Contains("is a directory"), tz::Error);

  std::string short_path = temp_path("short.txt");
  { std::ofstream(short_path, std::ios::binary) << "The dog runs."; }  // 13 bytes
  CHECK_THROWS_WITH_AS(TextDataset::from_file(short_path, {.val_fraction = 0, .seq_len = 16}),
                       doctest::Contains(short_path.c_str()), tz::Error);
  CHECK_THROWS_WITH_AS(TextDataset::from_file(short_path, {.val_fraction = 0, .seq_len = 16}),
                       doctest::Contains("needs 17"), tz::Error);
  CHECK_NOTHROW(TextDataset::from_file(short_path, {.val_fraction = 0, .seq_len = 12}));
  std::filesystem::remove(short_path);

  // Too short for the window asked at sampling time, and a validation split too small.
  TextDataset ds = TextDataset::from_string(std::string(100, 'a'), {.val_fraction = 0.1});
  Generator gen(0);
  CHECK_NOTHROW(ds.sample(Split::train, 2, 89, gen));
  CHECK_THROWS_AS(ds.sample(Split::train, 2, 90, gen), tz::Error);
  CHECK_THROWS_WITH_AS(ds.sample(Split::val, 2, 10, gen), doctest::Contains("val split has 10"), tz::Error);
  CHECK_THROWS_AS(TextDataset::from_string("", {}), tz::Error);
  CHECK_THROWS_AS(TextDataset::from_string("abc", {.val_fraction = 1.0}), tz::Error);
  CHECK_THROWS_AS(TextDataset::from_string(std::string(100, 'a'), {.seq_len = 10}), tz::Error);
}

TEST_CASE("text dataset: unigram entropy of the training split") {
  // "ab" repeated: two equally likely bytes = 1 bit; the validation part is not counted.
  std::string text;
  for (int i = 0; i < 45; ++i) text += "ab";
  text += "0123456789";  // the last 10% (validation)
  TextDataset ds = TextDataset::from_string(text, {.val_fraction = 0.1});
  CHECK(ds.val_begin() == 90);
  CHECK(ds.unigram_entropy_bits() == doctest::Approx(1.0));
  CHECK(ds.unigram_entropy_nats() == doctest::Approx(std::log(2.0)));
  CHECK(unigram_entropy_bits({0, 1, 2, 3}, 256) == doctest::Approx(2.0));
  CHECK(unigram_entropy_bits({5, 5, 5}, 256) == doctest::Approx(0.0));
}

TEST_CASE("text streams: each row reads on where it stopped, starts over at the split's end, resumes from cursors") {
  TextDataset ds = TextDataset::from_string(random_text(2000, 4), {.val_fraction = 0.25});
  const int64_t B = 3, T = 40;
  Generator g(5);
  TextStreams s(ds, Split::val, B, T, g);
  std::vector<int64_t> prev = window_starts(ds, s.next(g)), restarted;
  int64_t restarts = 0;
  for (int step = 0; step < 30; ++step) {
    const Tensor saved = s.cursors();
    std::vector<int64_t> starts = window_starts(ds, s.next(g, &restarted));
    for (int64_t r = 0; r < B; ++r) {
      const bool new_document = std::count(restarted.begin(), restarted.end(), r) > 0;
      CHECK(starts[size_t(r)] >= ds.val_begin());           // inside the validation split
      CHECK(starts[size_t(r)] + T + 1 <= ds.num_tokens());  // the last target too
      if (!new_document) CHECK(starts[size_t(r)] == prev[size_t(r)] + T);
      restarts += new_document;
    }
    prev = starts;
    if (step == 10) {  // streams set to the saved cursors read this segment again
      Generator g2(99);
      TextStreams again(ds, Split::val, B, T, g2);
      again.set_cursors(saved);
      std::vector<int64_t> re;
      const std::vector<int64_t> starts2 = window_starts(ds, again.next(g2, &re));
      for (int64_t r = 0; r < B; ++r)
        if (std::count(restarted.begin(), restarted.end(), r) == 0) CHECK(starts2[size_t(r)] == starts[size_t(r)]);
    }
  }
  CHECK(restarts > 0);  // 500 validation tokens, 40 per segment: every row started over
  CHECK_THROWS_WITH_AS(s.set_cursors(Tensor()), doctest::Contains("expected cursors i64 [3]"), Error);
}
