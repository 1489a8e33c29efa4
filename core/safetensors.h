// Checkpoint files in the safetensors format (https://github.com/huggingface/safetensors).
//
// A safetensors file has three parts:
//
//   [ 8 bytes ]  N, the header length: an unsigned 64-bit integer, little-endian
//   [ N bytes ]  the header: UTF-8 JSON, an object mapping each tensor name to
//                  {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//                plus an optional "__metadata__" object of string -> string
//   [ rest    ]  the data buffer: every tensor's bytes, little-endian, row-major, contiguous;
//                data_offsets are byte positions relative to the start of this buffer
//
// The buffer must be covered exactly: no two tensors overlap and no byte is unreferenced.
// tensorzoo reads and writes F32, F64 and I64 (our f32, f64, i64), and BF16 (bfloat16: the
// top half of an f32) as a compact way to store f32: BF16 tensors are widened to f32 when read
// (exactly), and f32 tensors can be stored as BF16 (rounded to nearest even). Files holding
// F16, I32, I8, U8 or BOOL tensors are recognised and rejected with an error naming the dtype,
// except that a quantized model's I8 and BF16 weights can be read as raw bytes (keep_raw).
//
// Writing lays the tensors out in sorted name order with no gaps and pads the header with
// spaces to a multiple of 8 bytes, so every tensor starts 8-byte aligned in the file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tz {

// A tensor kept as the bytes the file holds, for dtypes tensorzoo has no Tensor for (the
// int8 and bf16 weights of a quantized model, core/quant.h).
struct RawTensor {
  std::string dtype;  // as spelled in the header: "I8" or "BF16"
  Shape shape;
  std::vector<uint8_t> bytes;
};

// The contents of one safetensors file.
struct TensorFile {
  std::map<std::string, Tensor> tensors;        // name -> contiguous tensor (own storage)
  std::map<std::string, std::string> metadata;  // the "__metadata__" object, if any
  // The tensors whose dtype in the file differs from their dtype here: name -> "BF16" (read
  // as f32).
  std::map<std::string, std::string> file_dtypes;
  std::map<std::string, RawTensor> raw;  // only when read with keep_raw
};

// How save_safetensors stores f32 tensors: as they are, or as BF16 (half the bytes; 8 bits of
// mantissa, the same range). f64 and i64 tensors are always stored as they are.
enum class StoreF32 { f32, bf16 };

// f32 -> bfloat16 bits, rounded to nearest even; NaN stays NaN, overflow becomes Inf.
uint16_t f32_to_bf16(float x);
float bf16_to_f32(uint16_t bits);

// Writes `tensors` (any strides; dtype f32, f64 or i64) and `metadata` to `path`.
// The write is atomic: the bytes go to "<path>.tmp.<pid>" in the same directory, are
// flushed to disk (fsync) and then renamed over `path`, so a reader sees either the old
// file or the complete new one. On failure the temporary file is removed and tz::Error
// names the path and the OS error.
// `raw` tensors (dtype I8 or BF16, bytes matching the shape) are written as they are, laid out
// in name order with the others; a name may not be in both maps.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {}, StoreF32 store = StoreF32::f32,
                      const std::map<std::string, RawTensor>& raw = {});

// Reads a whole file. Every malformed input gives a tz::Error naming the file, the problem,
// the byte offset where one applies, and a hint; nothing is allocated before the header has
// been checked against the file size. keep_raw: I8 and BF16 tensors go to TensorFile::raw as
// their bytes (I8 is otherwise refused, BF16 widened to f32).
TensorFile load_safetensors(const std::string& path, bool keep_raw = false);

// The same, from bytes already in memory; `name_for_errors` stands for the file name in
// error messages.
TensorFile parse_safetensors(const std::vector<uint8_t>& bytes, const std::string& name_for_errors);

// The raw JSON header of a file (with any padding spaces), for inspection tools. Only the
// length prefix is checked, not the JSON.
std::string safetensors_header_json(const std::string& path);

}  // namespace tz
