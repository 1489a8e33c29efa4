// The tensorzoo tool's app: its subcommands, declared once for main.cpp and the argument fuzzer.
#include "cli/commands.h"

namespace tz::cli {

namespace {
std::shared_ptr<Communicator>& world_slot() {
  static std::shared_ptr<Communicator> comm = std::make_shared<SoloCommunicator>();
  return comm;
}
}  // namespace

std::shared_ptr<Communicator> world() { return world_slot(); }
void set_world(std::shared_ptr<Communicator> comm) { world_slot() = std::move(comm); }

std::unique_ptr<CLI::App> make_app(std::vector<Command>& commands) {
  auto app = std::make_unique<CLI::App>("tensorzoo: a from-scratch C++ deep-learning framework and transformer zoo");
  app->require_subcommand(1);
  app->set_help_all_flag("--help-all", "Show help for every command");
  app->set_version_flag("--version", "tensorzoo " TZ_VERSION);
  add_train_commands(*app, commands);
  add_zoo_commands(*app, commands);
  add_arena_command(*app, commands);
  add_probe_command(*app, commands);
  add_inspect_commands(*app, commands);
  add_eval_command(*app, commands);
  add_export_command(*app, commands);
  add_quantize_command(*app, commands);
  return app;
}

}  // namespace tz::cli
