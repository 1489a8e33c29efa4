// The tensorzoo command-line tool.
//   tensorzoo train     train a language model (any zoo config) on built-in or given text
//   tensorzoo sample    generate from a trained run or a model file, streaming tokens
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
//   tensorzoo export    a run's weights and config alone (f32 or bf16), for applications
// Every bad argument gives one clear line on stderr and exit status 2; a failure while
// running gives one line and exit status 1.
// Started by mpirun (a build with TZ_USE_MPI), `train` and `arena` run on every rank
// together (README: Training on several machines); a failure on one rank stops the job
// (MPI_Abort) with its line, which names the rank.
#include <fmt/core.h>

#include "core/text.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "cli/commands.h"
#ifdef TZ_HAVE_MPI
#include "core/mpi_comm.h"
#endif

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
#ifdef TZ_HAVE_MPI
  std::optional<tz::mpi::Session> mpi;
  if (tz::mpi::launched()) {
    mpi.emplace(&argc, &argv);
    tz::cli::set_world(mpi->world());
  }
#endif
  const int rank = tz::cli::world()->rank(), ranks = tz::cli::world()->size();
  // Every rank parses the same arguments, so argument errors are said once, by rank 0.
  const bool say_usage = rank == 0;
  std::vector<tz::cli::Command> commands;
  auto app_ptr = tz::cli::make_app(commands);
  CLI::App& app = *app_ptr;

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return say_usage ? app.exit(e) : 0;  // --help, --version
    if (!say_usage) return 2;
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
  // mpirun is for the commands that share work between ranks; the others run in one process.
  if (ranks > 1 && !app.got_subcommand("train") && !app.got_subcommand("arena")) {
    if (say_usage)
      fmt::print(stderr, "tensorzoo: under mpirun only train and arena run on several ranks; run '{}' without mpirun\n",
                 argc > 1 ? bounded(argv[1]) : "");
    return 2;
  }
#ifndef TZ_HAVE_MPI
  // Started by mpirun as one of several copies, a build without MPI would train alone in each.
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* n = std::getenv(var); n && std::atoi(n) > 1) {
      fmt::print(stderr,
                 "tensorzoo: started by mpirun as one of {} processes, but this build has no MPI (each would run "
                 "alone); install libopenmpi-dev and rebuild (TZ_USE_MPI, on when MPI is found)\n",
                 n);
      return 2;
    }
#endif
  // On several ranks a failure names its rank, and stops the others (which may be waiting
  // for it) with MPI_Abort, unless every rank failed alike (an error agreed on: rank 0 says it).
  const std::string who = ranks > 1 ? fmt::format("tensorzoo (rank {} of {})", rank, ranks) : "tensorzoo";
  auto fail = [&](const std::string& message, int code) {
    fmt::print(stderr, "{}: {}\n", who, bounded(message));
    std::fflush(stderr);
#ifdef TZ_HAVE_MPI
    if (mpi && ranks > 1) mpi->abort(code);
#endif
    return code;
  };
  try {
    for (auto& c : commands)
      if (c.sub->parsed()) return c.run();
  } catch (const CLI::ValidationError& e) {
    if (ranks > 1 && !say_usage) return 2;  // the same arguments fail on every rank: rank 0 says it
    fmt::print(stderr, "tensorzoo: {}\n", bounded(e.what()));
    return 2;
  } catch (const tz::AgreedError& e) {
    if (say_usage) fmt::print(stderr, "tensorzoo: {}\n", bounded(e.what()));
    return 1;
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  }
  return 0;
}
