// The subcommands of the `tensorzoo` tool. Each add_* function declares its options on the
// app and appends what to run when the subcommand is given. A bad argument throws
// CLI::ValidationError (exit 2); a failure while running throws tz::Error (exit 1).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace tz::cli {

struct Command {
  CLI::App* sub;
  std::function<int()> run;
};

void add_train_commands(CLI::App& app, std::vector<Command>& commands);  // train, sample
void add_zoo_commands(CLI::App& app, std::vector<Command>& commands);    // list, info, coverage, check
void add_arena_command(CLI::App& app, std::vector<Command>& commands);   // arena
void add_probe_command(CLI::App& app, std::vector<Command>& commands);   // probe (FFN key-value memories)

}  // namespace tz::cli
