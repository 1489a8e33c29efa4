// The PNG writer (core/png.h) against a reader written from the specifications
// (tests/png_reader.h): checksums on their published check values, deflate round trips on
// awkward inputs (empty, one byte, noise, long runs, past one stored block), and a written
// image read back pixel for pixel with a valid signature, chunk CRCs and IHDR size.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/png.h"
#include "core/random.h"
#include "tests/png_reader.h"

namespace tz::testing {
namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

TEST_CASE("png: CRC-32 and Adler-32 give their published check values") {
  const std::vector<uint8_t> digits = bytes_of("123456789");
  CHECK(crc32(digits.data(), digits.size()) == 0xCBF43926u);
  CHECK(crc32_bitwise(digits.data(), digits.size()) == 0xCBF43926u);
  // In two pieces, continued.
  CHECK(crc32(digits.data() + 4, 5, crc32(digits.data(), 4)) == 0xCBF43926u);
  const std::vector<uint8_t> wiki = bytes_of("Wikipedia");
  CHECK(adler32(wiki.data(), wiki.size()) == 0x11E60398u);
  CHECK(adler32(nullptr, 0) == 1u);
}

TEST_CASE("png: deflate, fixed codes and stored blocks, inflates back to the input") {
  Generator gen(5);
  std::vector<std::vector<uint8_t>> inputs{{}, {7}, bytes_of("abcabcabcabcabcabcab")};
  std::vector<uint8_t> noise(100000), runs, mixed;
  for (auto& x : noise) x = uint8_t(gen.randint(0, 256));
  for (int i = 0; i < 300; ++i) runs.insert(runs.end(), size_t(1 + i % 400), uint8_t(i % 3));
  for (int i = 0; i < 70000; ++i) mixed.push_back(uint8_t(i % 7 == 0 ? gen.randint(0, 256) : i / 1000));
  inputs.push_back(noise), inputs.push_back(runs), inputs.push_back(mixed);
  for (const auto& in : inputs) {
    CAPTURE(in.size());
    for (bool fixed : {true, false}) {
      std::string err;
      const std::vector<uint8_t> z = fixed ? deflate_fixed(in) : deflate_stored(in);
      CHECK(inflate(z, err) == in);
      CHECK(err == "");
    }
  }
  // Runs compress (the LZ77 matches are used): 300 runs, 45150 bytes, to under 5% (a literal
  // and a few matches a run); noise grows by at most the 9-bit literals' eighth.
  CHECK(deflate_fixed(runs).size() * 20 < runs.size());
  CHECK(deflate_fixed(noise).size() <= noise.size() * 9 / 8 + 8);
  // A damaged stream is caught by the reader.
  std::string err;
  std::vector<uint8_t> z = deflate_stored(noise);
  z[3] ^= 1;  // LEN no longer matches NLEN
  inflate(z, err);
  CHECK(err != "");
}

TEST_CASE("png: a written image is a valid PNG that reads back pixel for pixel") {
  Image im(37, 11, 0x102030);  // odd sizes: rows are not multiples of anything
  im.fill(3, 2, 10, 5, 0xff0000);
  im.fill(30, 8, 100, 100, 0x00ff7f);  // clipped at the edges
  for (int64_t x = 0; x < 37; x += 2) im.fill(x, 0, 1, 1, uint32_t(x * 0x050301));
  const std::vector<uint8_t> png = png_encode(im);
  const DecodedPng d = decode_png(png);
  REQUIRE(d.error == "");
  CHECK(d.width == 37);
  CHECK(d.height == 11);
  CHECK(d.pixels == im.pixels);
  CHECK(im.at(5, 3) == 0xff0000u);
  CHECK(im.at(36, 10) == 0x00ff7fu);
  CHECK(im.at(0, 10) == 0x102030u);
  // The first chunk is IHDR, right after the signature.
  CHECK(std::string(png.begin() + 12, png.begin() + 16) == "IHDR");
  // One flipped byte anywhere in a chunk breaks its CRC.
  std::vector<uint8_t> bad = png;
  bad[40] ^= 0x10;
  CHECK(decode_png(bad).error != "");

  const std::string path = "test_png_out.png";
  write_png(path, im);
  std::ifstream f(path, std::ios::binary);
  const std::vector<uint8_t> back{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  CHECK(back == png);
  std::remove(path.c_str());
  CHECK_THROWS_AS(write_png("/nonexistent-dir/x.png", im), Error);
  CHECK_THROWS_AS(Image(0, 3), Error);
}

}  // namespace
}  // namespace tz::testing
