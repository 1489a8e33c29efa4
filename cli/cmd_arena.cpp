// `tensorzoo arena`: several variants, one task, one budget, one table and one plot.
#include <fmt/core.h>

#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/plot.h"
#include "core/text.h"
#include "data/tasks.h"
#include "train/arena.h"

namespace tz::cli {

void add_arena_command(CLI::App& app, std::vector<Command>& commands) {
  struct Args {
    arena::Options o;
    std::string models, spec, lengths;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("arena", "Train variants on one task under one budget and compare them");
  cmd->add_option("--models", a->models, "Comma-separated variant ids, e.g. gpt,rmsnorm,sinusoidal_pe");
  cmd->add_option("--spec", a->spec, "JSON spec file: {\"task\", \"steps\", \"models\": {name: config}, ...}")
      ->check(CLI::ExistingFile);
  std::vector<std::string> tasks = data::task_names();
  tasks.push_back("text");
  cmd->add_option("--task", a->o.task, "Task")->check(CLI::IsMember(tasks))->capture_default_str();
  cmd->add_option("--steps", a->o.steps, "Training steps per model")->capture_default_str();
  cmd->add_option("--batch", a->o.batch, "Sequences per step")->capture_default_str();
  cmd->add_option("--seq-len", a->o.seq_len, "Training sequence length")->capture_default_str();
  cmd->add_option("--vocab", a->o.vocab, "Task vocabulary (0: the task's default: 64; mqar_zoology 8192; *_mamba 16)")
      ->capture_default_str();
  data::TaskOptions& to = a->o.task_options;
  cmd->add_option("--copy-len", to.copy_len,
                  "copy, selective_copy(_mamba): tokens to reproduce (0: the task's default)")
      ->capture_default_str();
  cmd->add_option("--num-pairs", to.num_pairs, "mqar(_zoology): key-value pairs")->capture_default_str();
  cmd->add_option("--num-queries", to.num_queries, "mqar: keys queried (0: all)")->capture_default_str();
  cmd->add_option("--power-a", to.power_a, "mqar_zoology: query gaps follow P(g) ~ (g + 1)^(power_a - 1); 1 is uniform")
      ->capture_default_str();
  cmd->add_flag("--random-fill", to.random_fill,
                "mqar_zoology: random ids instead of 0 between the queries (Zoology's random_non_queries)");
  cmd->add_option("--passkey-digits", to.passkey_digits, "passkey: digits of the hidden number")->capture_default_str();
  cmd->add_option("--lr", a->o.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--base", a->o.base, "Config shared by every model (JSON)")->capture_default_str();
  cmd->add_flag("--match-params", a->o.match_params, "Adjust each model's dim to the first model's parameter count");
  cmd->add_option("--eval-lengths", a->lengths, "Evaluate at these multiples of --seq-len, e.g. 1,2,4");
  cmd->add_option("--segment", a->o.segment,
                  "Read sequences as segments of this length (the models' context); memory models carry their "
                  "memory across them (0: whole sequences)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--retrospective", a->o.retrospective,
                "With --segment: memory models read each sequence twice, learning on the second reading (ERNIE-Doc)");
  cmd->add_option("--seed", a->o.seed, "Seed for data and initialisation")->capture_default_str();
  cmd->add_option("--distill-from", a->o.distill_from,
                  "A run directory with a softmax-attention LM: convert it into each --models feature-map mixer "
                  "(e.g. hedgehog,dijiang), distill the attention, then fine-tune --steps on its text")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--distill-steps", a->o.distill_steps, "With --distill-from: steps of attention distillation")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", a->o.threads, "Threads (0 = as set)");
  cmd->add_option("--out", a->o.out_dir, "Output directory")->capture_default_str();
  commands.push_back(
      {cmd, [a] {
         arena::Options o = a->o;
         if (!a->spec.empty()) {
           o = arena::options_from_spec(read_file(a->spec, "--spec", uint64_t(1) << 24), o);
         }
         if (!a->models.empty())
           o.models = o.distill_from.empty() ? arena::entries_from_ids(a->models) : arena::mixer_entries(a->models);
         if (o.models.empty()) throw CLI::ValidationError("arena: give --models id,id,... or --spec FILE");
         if (!a->lengths.empty()) {
           o.eval_lengths.clear();
           std::stringstream ss(a->lengths);
           std::string x;
           while (std::getline(ss, x, ',')) {
             try {
               o.eval_lengths.push_back(std::stoll(x));
             } catch (const std::exception&) {
               throw CLI::ValidationError("--eval-lengths: expected integers like 1,2,4, got '" + a->lengths + "'");
             }
             if (o.eval_lengths.back() < 1) throw CLI::ValidationError("--eval-lengths: multiples must be >= 1");
           }
         }
         // On several ranks (mpirun) each trains every N-th model; rank 0 reports.
         Communicator& comm = *world();
         const bool lead = comm.rank() == 0;
         const std::string on =
             comm.size() > 1 ? fmt::format(", on {} ranks (one model per rank at a time)", comm.size()) : "";
         if (lead && o.distill_from.empty())
           fmt::print("arena: {} models, task {}, {} steps of {} x {} tokens{}\n", o.models.size(), o.task, o.steps,
                      o.batch, o.seq_len, on);
         else if (lead)
           fmt::print("arena: {} models from {}: {} distillation + {} fine-tuning steps of {} x {} tokens{}\n",
                      o.models.size(), o.distill_from, o.distill_steps, o.steps, o.batch, o.seq_len, on);
         const std::string tag = comm.size() > 1 ? fmt::format("[rank {}] ", comm.rank()) : "";
         auto progress = [&tag](const std::string& line) {
           fmt::print("{}{}\n", tag, line);
           std::fflush(stdout);
         };
         auto results = comm.size() > 1 ? arena::run(o, comm, progress) : arena::run(o, progress);
         if (!lead) return 0;
         fmt::print("\n{}\n", arena::report(o, results));
         std::string plot;
         plot_arena(o, results.size(), plot);
         fmt::print("results: {}/results.csv, curves: {}/curves.csv, table: {}/table.md\nplot: {}\n", o.out_dir,
                    o.out_dir, o.out_dir, plot);
         for (const auto& r : results)
           for (const auto& [m, why] : r.val_error) fmt::print("note: {} at x{} length: {}\n", r.name, m, why);
         return 0;
       }});
}

}  // namespace tz::cli
