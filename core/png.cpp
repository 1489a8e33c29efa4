// The PNG writer: see png.h.
#include "core/png.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "core/error.h"

namespace tz {

Image::Image(int64_t w, int64_t h, uint32_t rgb) : width(w), height(h) {
  TZ_CHECK(w >= 1 && h >= 1 && w <= (int64_t(1) << 24) && h <= (int64_t(1) << 24),
           "Image: expected a width and height in [1, 2^24], got ", w, " x ", h);
  pixels.resize(size_t(w * h * 3));
  fill(0, 0, w, h, rgb);
}

uint32_t Image::at(int64_t x, int64_t y) const {
  TZ_CHECK(x >= 0 && x < width && y >= 0 && y < height, "Image::at: pixel (", x, ", ", y, ") outside ", width, " x ",
           height);
  const uint8_t* p = &pixels[size_t((y * width + x) * 3)];
  return uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2];
}

void Image::fill(int64_t x, int64_t y, int64_t w, int64_t h, uint32_t rgb) {
  const int64_t x0 = std::max<int64_t>(x, 0), x1 = std::min(x + w, width);
  const int64_t y0 = std::max<int64_t>(y, 0), y1 = std::min(y + h, height);
  for (int64_t r = y0; r < y1; ++r)
    for (int64_t c = x0; c < x1; ++c) {
      uint8_t* p = &pixels[size_t((r * width + c) * 3)];
      p[0] = uint8_t(rgb >> 16), p[1] = uint8_t(rgb >> 8), p[2] = uint8_t(rgb);
    }
}

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc) {
  // The reflected polynomial 0xEDB88320, a byte at a time from a 256-entry table.
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t adler32(const uint8_t* data, size_t n, uint32_t adler) {
  uint32_t a = adler & 0xffff, b = adler >> 16;
  for (size_t i = 0; i < n; ++i) {
    a = (a + data[i]) % 65521;
    b = (b + a) % 65521;
  }
  return b << 16 | a;
}

namespace {
void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}
void chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  put32(out, uint32_t(data.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put32(out, crc32(&out[start], out.size() - start));
}

// Bits into bytes, least significant bit first (RFC 1951 sec. 3.1.1).
class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>& out) : out_(out) {}
  void bits(uint32_t v, int n) {  // the n low bits of v, least significant first (extra bits)
    acc_ |= uint64_t(v & ((1u << n) - 1)) << fill_;
    fill_ += n;
    while (fill_ >= 8) out_.push_back(uint8_t(acc_)), acc_ >>= 8, fill_ -= 8;
  }
  void code(uint32_t c, int n) {  // a Huffman code, most significant bit first
    uint32_t r = 0;
    for (int i = 0; i < n; ++i) r |= ((c >> i) & 1) << (n - 1 - i);
    bits(r, n);
  }
  void flush() {
    if (fill_ > 0) out_.push_back(uint8_t(acc_)), acc_ = 0, fill_ = 0;
  }

 private:
  std::vector<uint8_t>& out_;
  uint64_t acc_ = 0;
  int fill_ = 0;
};

// The fixed literal/length code of symbol 0..287 (RFC 1951 sec. 3.2.6).
void fixed_symbol(BitWriter& w, int sym) {
  if (sym < 144)
    w.code(0x30 + uint32_t(sym), 8);
  else if (sym < 256)
    w.code(0x190 + uint32_t(sym - 144), 9);
  else if (sym < 280)
    w.code(uint32_t(sym - 256), 7);
  else
    w.code(0xC0 + uint32_t(sym - 280), 8);
}

// Lengths 3..258 -> symbols 257..285 and distances 1..32768 -> codes 0..29: base values
// and extra bits (RFC 1951 sec. 3.2.5).
constexpr int kLenBase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                              31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr int kLenExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr int kDistBase[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                               193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr int kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

void fixed_match(BitWriter& w, int len, int dist) {
  int l = 28;
  while (kLenBase[l] > len) --l;
  fixed_symbol(w, 257 + l);
  w.bits(uint32_t(len - kLenBase[l]), kLenExtra[l]);
  int d = 29;
  while (kDistBase[d] > dist) --d;
  w.code(uint32_t(d), 5);  // distance codes are all 5 bits
  w.bits(uint32_t(dist - kDistBase[d]), kDistExtra[d]);
}
}  // namespace

std::vector<uint8_t> deflate_fixed(const std::vector<uint8_t>& data) {
  constexpr size_t kWindow = 32768, kMaxLen = 258, kHashBits = 15;
  std::vector<uint8_t> out;
  BitWriter w(out);
  w.bits(1, 1);                                           // BFINAL
  w.bits(1, 2);                                           // BTYPE 01: fixed Huffman codes
  std::vector<int64_t> last(size_t(1) << kHashBits, -1);  // hash of 3 bytes -> last position seen
  const size_t n = data.size();
  auto hash = [&](size_t i) {
    return size_t((uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8 | data[i + 2]) * 2654435761u >>
                  (32 - kHashBits));
  };
  auto remember = [&](size_t i) {
    if (i + 3 <= n) last[hash(i)] = int64_t(i);
  };
  for (size_t i = 0; i < n;) {
    size_t len = 0, dist = 0;
    if (i + 3 <= n) {
      const int64_t c = last[hash(i)];
      if (c >= 0 && i - size_t(c) <= kWindow) {
        size_t m = 0;
        while (m < kMaxLen && i + m < n && data[size_t(c) + m] == data[i + m]) ++m;
        if (m >= 3) len = m, dist = i - size_t(c);
      }
    }
    if (len) {
      fixed_match(w, int(len), int(dist));
      for (size_t k = 0; k < len; ++k) remember(i + k);
      i += len;
    } else {
      fixed_symbol(w, data[i]);
      remember(i);
      ++i;
    }
  }
  fixed_symbol(w, 256);  // end of block
  w.flush();
  return out;
}

std::vector<uint8_t> deflate_stored(const std::vector<uint8_t>& data) {
  std::vector<uint8_t> z;
  size_t at = 0;
  do {
    const size_t len = std::min<size_t>(data.size() - at, 65535);
    z.push_back(at + len == data.size() ? 1 : 0);  // BFINAL, BTYPE 00
    z.push_back(uint8_t(len)), z.push_back(uint8_t(len >> 8));
    z.push_back(uint8_t(~len)), z.push_back(uint8_t(~len >> 8));
    z.insert(z.end(), data.begin() + ptrdiff_t(at), data.begin() + ptrdiff_t(at + len));
    at += len;
  } while (at < data.size());
  return z;
}

std::vector<uint8_t> png_encode(const Image& im) {
  // The scanlines, filter 2 (Up): byte minus the byte above (0 above the first row).
  const size_t row = size_t(im.width) * 3;
  std::vector<uint8_t> raw;
  raw.reserve(size_t(im.height) * (row + 1));
  for (size_t y = 0; y < size_t(im.height); ++y) {
    raw.push_back(2);
    for (size_t x = 0; x < row; ++x)
      raw.push_back(uint8_t(im.pixels[y * row + x] - (y ? im.pixels[(y - 1) * row + x] : 0)));
  }
  // zlib: CMF 0x78 (deflate, 32 KB window), FLG 0x01 (0x7801 % 31 == 0), the deflate
  // stream, Adler-32 of the uncompressed bytes.
  std::vector<uint8_t> z{0x78, 0x01};
  const std::vector<uint8_t> d = deflate_fixed(raw);
  z.insert(z.end(), d.begin(), d.end());
  put32(z, adler32(raw.data(), raw.size()));

  std::vector<uint8_t> out{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  std::vector<uint8_t> ihdr;
  put32(ihdr, uint32_t(im.width));
  put32(ihdr, uint32_t(im.height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // bit depth, RGB, deflate, adaptive filters, no interlace
  chunk(out, "IHDR", ihdr);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", {});
  return out;
}

void write_png(const std::string& path, const Image& image) {
  const std::vector<uint8_t> bytes = png_encode(image);
  const std::string tmp = cat_str(path, ".tmp.", ::getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!f.good()) {
      std::remove(tmp.c_str());
      throw Error(cat_str("write_png: cannot write '", path, "' (through '", tmp, "')"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(cat_str("write_png: cannot rename '", tmp, "' to '", path, "'"));
  }
}

}  // namespace tz
