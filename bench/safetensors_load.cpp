// Load time of a safetensors checkpoint against its number of tensors: the header parse must
// stay linear (a parse that rescans the header grows with the square of the count).
//   safetensors_load DIR [N ...]   writes DIR/tensors_N.safetensors (N one-float tensors) and
//                                  prints one line per N: tensors, header bytes, load ms
//                                  (median of 5). bench/run_safetensors_bench.sh compares the
//                                  files' load time with the safetensors library's.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/creation.h"
#include "core/safetensors.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: safetensors_load DIR [N ...]\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::vector<int64_t> counts;
  try {
    for (int i = 2; i < argc; ++i) {
      counts.push_back(tz::bench::parse_whole("a tensor count", argv[i]));
      TZ_CHECK(counts.back() >= 1, "a tensor count must be at least 1, got ", counts.back());
    }
  } catch (const tz::Error& e) {
    std::fprintf(stderr, "safetensors_load: %s\nusage: safetensors_load DIR [N ...]\n", e.what());
    return 2;
  }
  if (counts.empty()) counts = {1000, 10000, 100000};
  std::filesystem::create_directories(dir);
  std::printf("tensors,header_bytes,load_ms\n");
  for (int64_t n : counts) {
    std::map<std::string, tz::Tensor> tensors;
    for (int64_t i = 0; i < n; ++i) tensors["model.layers." + std::to_string(i) + ".weight"] = tz::zeros({1});
    const std::string path = dir + "/tensors_" + std::to_string(n) + ".safetensors";
    tz::save_safetensors(path, tensors);
    std::vector<double> ms;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      const tz::TensorFile f = tz::load_safetensors(path);
      ms.push_back(1e3 * tz::bench::seconds_since(t0));
      if (int64_t(f.tensors.size()) != n) return 1;
    }
    std::printf("%lld,%llu,%.2f\n", (long long)n, (unsigned long long)tz::safetensors_header_json(path).size(),
                tz::bench::median(ms));
  }
}
