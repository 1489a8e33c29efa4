// The tensorzoo command-line tool.
//   tensorzoo train     train a language model (any zoo config) on built-in or given text
//   tensorzoo sample    generate from a trained run, streaming tokens
//   tensorzoo list      the registered variants (filter by family, kind or tier)
//   tensorzoo info ID   a variant's paper, computation, config keys and source
//   tensorzoo coverage  registered ids against the catalogue
//   tensorzoo docs      docs/variants.md from the registry
//   tensorzoo layouts   PNGs of the sparse-attention layouts (docs/sparse_attention.md)
//   tensorzoo check ID  the conformance checks on one variant
//   tensorzoo probe     the key-value memories of a trained run's FFN layers
//   tensorzoo arena     train several variants on one task under one budget, compare
//   tensorzoo eval      a trained run's loss, perplexity and bits per byte on a text
//   tensorzoo inspect   the tensors and metadata of a safetensors file
//   tensorzoo runs      the runs under a directory: step, model, validation loss
// Every bad argument gives one clear line on stderr and exit status 2; a failure while
// running gives one line and exit status 1.
#include <fmt/core.h>

#include "core/text.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "cli/commands.h"

namespace {
// An error message quotes what it was given, which may be huge (a crafted config key, a
// long argument): keep at most about 1000 characters of it.
std::string bounded(std::string_view message) {
  constexpr size_t kMax = 1000, kKeep = 800;
  if (message.size() <= kMax) return std::string(message);
  return fmt::format("{} ... ({} more characters)", message.substr(0, kKeep), message.size() - kKeep);
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<tz::cli::Command> commands;
  auto app_ptr = tz::cli::make_app(commands);
  CLI::App& app = *app_ptr;

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
    if (argc > 1 && argv[1][0] != '-' && std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      const std::string guess = tz::nearest(argv[1], names);
      fmt::print(stderr, "tensorzoo: unknown command '{}'{}; commands: {}\n", bounded(argv[1]),
                 guess.empty() ? "" : "; did you mean '" + guess + "'?", tz::join(names));
      return 2;
    }
    fmt::print(stderr, "tensorzoo: {} (see --help)\n", bounded(e.what()));
    return 2;
  }
  try {
    for (auto& c : commands)
      if (c.sub->parsed()) return c.run();
  } catch (const CLI::ValidationError& e) {
    fmt::print(stderr, "tensorzoo: {}\n", bounded(e.what()));
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "tensorzoo: {}\n", bounded(e.what()));
    return 1;
  }
  return 0;
}
