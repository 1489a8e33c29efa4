// A PNG reader for the tests, written from the specifications apart from the writer
// (core/png.h) so that each checks the other: the signature, every chunk's CRC-32 (bit by
// bit, no table), IHDR (8-bit RGB, no interlace), the zlib header and Adler-32, inflate of
// stored and fixed-Huffman deflate blocks (RFC 1951; dynamic blocks are refused: the writer
// never makes them), and the five scanline filters. Errors are strings, not exceptions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tz::testing {

inline uint32_t crc32_bitwise(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

// Raw deflate -> bytes; on a malformed stream, error is set.
inline std::vector<uint8_t> inflate(const std::vector<uint8_t>& in, std::string& error) {
  std::vector<uint8_t> out;
  size_t pos = 0;  // in bits
  auto bit = [&]() -> uint32_t {
    if (pos >= in.size() * 8) {
      error = "deflate: stream ends early";
      return 0;
    }
    const uint32_t b = (in[pos / 8] >> (pos % 8)) & 1;
    ++pos;
    return b;
  };
  auto bits = [&](int n) {  // least significant first
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v |= bit() << i;
    return v;
  };
  // A fixed literal/length symbol: codes read most significant bit first.
  auto symbol = [&]() -> int {
    uint32_t c = 0;
    for (int i = 0; i < 7; ++i) c = c << 1 | bit();
    if (c <= 0x17) return 256 + int(c);  // 7 bits: 256..279
    c = c << 1 | bit();
    if (c >= 0x30 && c <= 0xBF) return int(c - 0x30);  // 8 bits: 0..143
    if (c >= 0xC0 && c <= 0xC7) return 280 + int(c - 0xC0);
    c = c << 1 | bit();
    return c >= 0x190 && c <= 0x1FF ? 144 + int(c - 0x190) : -1;  // 9 bits: 144..255
  };
  static const int len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                   31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
  for (bool last = false; !last && error.empty();) {
    last = bit();
    const uint32_t type = bits(2);
    if (type == 0) {
      pos = (pos + 7) / 8 * 8;
      const size_t at = pos / 8;
      if (at + 4 > in.size()) return error = "stored block: no header", out;
      const uint32_t len = in[at] | in[at + 1] << 8, nlen = in[at + 2] | in[at + 3] << 8;
      if ((len ^ 0xffffu) != nlen) return error = "stored block: NLEN is not ~LEN", out;
      if (at + 4 + len > in.size()) return error = "stored block: data ends early", out;
      out.insert(out.end(), in.begin() + ptrdiff_t(at + 4), in.begin() + ptrdiff_t(at + 4 + len));
      pos = (at + 4 + len) * 8;
    } else if (type == 1) {
      for (;;) {
        const int s = symbol();
        if (!error.empty()) return out;
        if (s < 0 || s > 285) return error = "fixed block: bad symbol", out;
        if (s < 256) {
          out.push_back(uint8_t(s));
          continue;
        }
        if (s == 256) break;
        const int l = s - 257;
        const int extra = l < 8 || l == 28 ? 0 : (l - 4) / 4;
        const size_t len = size_t(len_base[l]) + bits(extra);
        uint32_t d = 0;
        for (int i = 0; i < 5; ++i) d = d << 1 | bit();
        if (d > 29) return error = "fixed block: bad distance code", out;
        const int dextra = d < 4 ? 0 : int(d / 2 - 1);
        const size_t dbase = d < 4 ? d + 1 : ((2 + (d & 1)) << dextra) + 1;
        const size_t dist = dbase + bits(dextra);
        if (dist > out.size()) return error = "fixed block: distance before the start", out;
        for (size_t i = 0; i < len; ++i) out.push_back(out[out.size() - dist]);
      }
    } else {
      return error = "deflate: block type " + std::to_string(type) + " not expected", out;
    }
  }
  return out;
}

struct DecodedPng {
  std::string error;  // empty when valid
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // [height, width, 3]
  uint32_t at(int64_t x, int64_t y) const {
    const uint8_t* p = &pixels[size_t((y * width + x) * 3)];
    return uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2];
  }
};

inline DecodedPng decode_png(const std::vector<uint8_t>& f) {
  DecodedPng r;
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (f.size() < 8 || !std::equal(sig, sig + 8, f.begin())) return r.error = "no PNG signature", r;
  auto be32 = [&](size_t at) {
    return uint32_t(f[at]) << 24 | uint32_t(f[at + 1]) << 16 | uint32_t(f[at + 2]) << 8 | f[at + 3];
  };
  std::vector<uint8_t> z;
  bool ihdr = false, iend = false;
  for (size_t at = 8; at < f.size() && !iend;) {
    if (at + 12 > f.size()) return r.error = "chunk header past the end", r;
    const uint32_t n = be32(at);
    if (at + 12 + n > f.size()) return r.error = "chunk data past the end", r;
    const std::string type(f.begin() + ptrdiff_t(at + 4), f.begin() + ptrdiff_t(at + 8));
    if (crc32_bitwise(&f[at + 4], n + 4) != be32(at + 8 + n)) return r.error = "bad CRC in chunk " + type, r;
    const size_t d = at + 8;
    if (type == "IHDR") {
      if (n != 13) return r.error = "IHDR is not 13 bytes", r;
      r.width = be32(d), r.height = be32(d + 4);
      if (f[d + 8] != 8 || f[d + 9] != 2 || f[d + 10] != 0 || f[d + 11] != 0 || f[d + 12] != 0)
        return r.error = "IHDR: not 8-bit RGB, deflate, no interlace", r;
      ihdr = true;
    } else if (type == "IDAT") {
      if (!ihdr) return r.error = "IDAT before IHDR", r;
      z.insert(z.end(), f.begin() + ptrdiff_t(d), f.begin() + ptrdiff_t(d + n));
    } else if (type == "IEND") {
      iend = true;
      if (at + 12 != f.size()) return r.error = "bytes after IEND", r;
    }
    at += 12 + n;
  }
  if (!ihdr || !iend || r.width < 1 || r.height < 1) return r.error = "missing IHDR or IEND", r;
  if (z.size() < 6 || (z[0] & 0x0f) != 8 || (z[0] << 8 | z[1]) % 31 != 0) return r.error = "bad zlib header", r;
  std::vector<uint8_t> raw = inflate(std::vector<uint8_t>(z.begin() + 2, z.end() - 4), r.error);
  if (!r.error.empty()) return r;
  uint32_t a = 1, b = 0;
  for (uint8_t x : raw) a = (a + x) % 65521, b = (b + a) % 65521;
  const size_t e = z.size() - 4;
  if ((b << 16 | a) != (uint32_t(z[e]) << 24 | uint32_t(z[e + 1]) << 16 | uint32_t(z[e + 2]) << 8 | z[e + 3]))
    return r.error = "bad Adler-32", r;
  const size_t row = size_t(r.width) * 3;
  if (raw.size() != size_t(r.height) * (row + 1)) return r.error = "scanlines do not match IHDR's size", r;
  r.pixels.assign(size_t(r.height) * row, 0);
  for (size_t y = 0; y < size_t(r.height); ++y) {
    const uint8_t ft = raw[y * (row + 1)];
    for (size_t x = 0; x < row; ++x) {
      const int left = x >= 3 ? r.pixels[y * row + x - 3] : 0, up = y ? r.pixels[(y - 1) * row + x] : 0,
                ul = x >= 3 && y ? r.pixels[(y - 1) * row + x - 3] : 0;
      int pred = 0;
      if (ft == 1) pred = left;
      if (ft == 2) pred = up;
      if (ft == 3) pred = (left + up) / 2;
      if (ft == 4) {
        const int p = left + up - ul, pa = std::abs(p - left), pb = std::abs(p - up), pc = std::abs(p - ul);
        pred = pa <= pb && pa <= pc ? left : pb <= pc ? up : ul;
      }
      if (ft > 4) return r.error = "bad filter type", r;
      r.pixels[y * row + x] = uint8_t(raw[y * (row + 1) + 1 + x] + pred);
    }
  }
  return r;
}

}  // namespace tz::testing
