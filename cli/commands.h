// The subcommands of the `tensorzoo` tool. Each add_* function declares its options on the
// app and appends what to run when the subcommand is given. A bad argument throws
// CLI::ValidationError (exit 2); a failure while running throws tz::Error (exit 1).
#pragma once

#include <CLI/CLI.hpp>

#include "core/communicator.h"

#include <functional>
#include <memory>
#include <vector>

namespace tz::cli {

struct Command {
  CLI::App* sub;
  std::function<int()> run;
};

// The tool: every subcommand declared on one app (main.cpp parses and runs it; the argument
// fuzzer, tests/fuzz/fuzz_cli.cpp, only parses).
std::unique_ptr<CLI::App> make_app(std::vector<Command>& commands);

// The processes of this run: MPI's world when started by mpirun (main.cpp sets it), else
// this process alone.
std::shared_ptr<Communicator> world();
void set_world(std::shared_ptr<Communicator> comm);

void add_train_commands(CLI::App& app, std::vector<Command>& commands);    // train, sample
void add_zoo_commands(CLI::App& app, std::vector<Command>& commands);      // list, info, coverage, docs, layouts, check
void add_arena_command(CLI::App& app, std::vector<Command>& commands);     // arena
void add_probe_command(CLI::App& app, std::vector<Command>& commands);     // probe (FFN key-value memories)
void add_inspect_commands(CLI::App& app, std::vector<Command>& commands);  // inspect (safetensors), runs
void add_eval_command(CLI::App& app, std::vector<Command>& commands);      // eval (loss on a text)
void add_export_command(CLI::App& app, std::vector<Command>& commands);    // export (weights only)
void add_quantize_command(CLI::App& app, std::vector<Command>& commands);  // quantize (int8 / bf16 weights)

}  // namespace tz::cli
