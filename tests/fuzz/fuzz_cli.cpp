// libFuzzer harness: the `tensorzoo` command line. The input is split at NUL bytes into
// arguments (at most 64) and parsed by the tool's own app, validators included; nothing is
// run. The app is built once (CLI11 clears the last parse before the next). A parse must succeed or raise CLI::Error
// (the tool prints one line and exits 2); any other exception, a crash or a sanitizer report is a bug. The values the
// commands then read (configs, specs, checkpoints) have harnesses of their own.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/commands.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args{"tensorzoo"};
  std::string current;
  for (size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current += char(data[i]);
    }
  }
  if (!current.empty() && args.size() < 64) args.push_back(current);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());

  static std::vector<tz::cli::Command> commands;
  static const auto app = tz::cli::make_app(commands);
  try {
    app->parse(int(argv.size()), argv.data());
  } catch (const CLI::Error&) {
  }
  return 0;
}
