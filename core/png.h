// A minimal PNG writer (no dependency): an 8-bit RGB image as the bytes of a PNG file (the
// format: https://www.w3.org/TR/png-3/; zlib: RFC 1950; deflate: RFC 1951).
//
//   [ 8 bytes ]  the signature 89 50 4E 47 0D 0A 1A 0A
//   chunks       each: length (4 bytes, big-endian), type (4 ASCII letters), data, and the
//                CRC-32 of type + data (big-endian)
//     IHDR       width, height (4 bytes each), bit depth 8, colour type 2 (RGB),
//                compression 0, filter 0, interlace 0
//     IDAT       a zlib stream of the scanlines: the header 78 01, one deflate block, the
//                Adler-32 of the scanlines (big-endian)
//     IEND       empty
// Scanlines: each row is a filter byte, 2 ("Up": each byte minus the byte above it), then
// width x 3 bytes. Diagrams of flat rectangles become long runs of zeros and repeats, which
// the deflate block then takes as LZ77 back-references.
// Deflate (RFC 1951 sec. 3.2.6): one final block with the fixed Huffman codes (BTYPE 01),
// so no code tables are sent. Matches are found greedily: a hash of the next 3 bytes names
// the last position they were seen at (within the 32 KB window), and the match is extended up
// to 258 bytes. Bits are packed from the least significant end; Huffman codes go most
// significant bit first, the extra bits of lengths and distances least significant first.
// deflate_stored() is the other form every reader accepts (BTYPE 00, raw bytes in blocks of
// at most 65535), kept as the plain reference the tests decode alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tz {

// An RGB image, row-major, 3 bytes a pixel, (0, 0) at the top left.
struct Image {
  Image(int64_t width, int64_t height, uint32_t rgb = 0xffffff);  // filled with one colour
  int64_t width, height;
  std::vector<uint8_t> pixels;  // [height, width, 3]
  // Colour of a pixel as 0xRRGGBB.
  uint32_t at(int64_t x, int64_t y) const;
  // Fills the rectangle [x, x + w) x [y, y + h), clipped to the image.
  void fill(int64_t x, int64_t y, int64_t w, int64_t h, uint32_t rgb);
};

// The CRC-32 of PNG chunks and zlib's Adler-32, continuing from `crc` / `adler`.
uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0);
uint32_t adler32(const uint8_t* data, size_t n, uint32_t adler = 1);

// Raw deflate streams (no zlib header) of `data`: fixed Huffman codes with LZ77 matches, or
// stored blocks.
std::vector<uint8_t> deflate_fixed(const std::vector<uint8_t>& data);
std::vector<uint8_t> deflate_stored(const std::vector<uint8_t>& data);

// The bytes of a PNG file holding the image (its IDAT compressed with deflate_fixed).
std::vector<uint8_t> png_encode(const Image& image);
// Writes it to `path` (through a temporary file renamed over it); tz::Error names the path on
// failure.
void write_png(const std::string& path, const Image& image);

}  // namespace tz
