// libFuzzer harness: a checkpoint file, as `sample` and `train --resume` read it.
// Any bytes must either parse or raise tz::Error; a parsed file must hold tensors whose
// bytes can all be read (ASan checks every access), and a checkpoint that passes read_run
// must have a usable config. Any other exception, a crash or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/safetensors.h"
#include "train/run_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  tz::TensorFile file;
  try {
    file = tz::parse_safetensors(bytes, "fuzz.safetensors");
  } catch (const tz::Error&) {
    return 0;
  }
  volatile uint8_t sink = 0;
  for (const auto& [name, t] : file.tensors) {
    const size_t n = size_t(t.numel()) * tz::dtype_size(t.dtype());
    if (n == 0) continue;
    const auto* p = static_cast<const uint8_t*>(t.raw_data());
    sink = sink + p[0] + p[n - 1];
  }
  try {
    const tz::train::RunCheckpoint run = tz::train::read_run(std::move(file), "fuzz/checkpoint.safetensors");
    if (run.model.dump().empty()) __builtin_trap();
  } catch (const tz::Error&) {
  }
  return 0;
}
