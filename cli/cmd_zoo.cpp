// `tensorzoo list | info | coverage | docs | layouts | check`: the registry seen from the
// command line.
#include <fmt/core.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/layout_image.h"
#include "core/text.h"
#include "models/zoo.h"
#include "nn/catalogue.h"
#include "nn/sparse_attention/layout_gallery.h"
#include "train/conformance.h"

namespace tz::cli {

using nn::catalogue;
using nn::catalogue_row;
using nn::CatalogueRow;

namespace {
std::string tier_of(const std::string& id) {
  const CatalogueRow* row = catalogue_row(id);
  return row ? std::to_string(row->tier) : "extra";
}

std::vector<std::string> all_known_ids() {
  std::vector<std::string> ids = zoo::registry().ids();
  for (const auto& r : catalogue()) ids.push_back(r.id);
  return ids;
}

int list(const std::string& family, const std::string& kind, int tier, bool ids_only, bool as_json) {
  nlohmann::json out = nlohmann::json::array();
  std::vector<const nn::VariantInfo*> rows;
  for (const nn::VariantInfo* v : zoo::registry().all()) {
    if (!family.empty() && v->family != family) continue;
    if (!kind.empty() && v->kind != kind) continue;
    if (tier > 0 && tier_of(v->id) != std::to_string(tier)) continue;
    rows.push_back(v);
  }
  if (rows.empty() && !family.empty()) {
    std::vector<std::string> families;
    for (const auto& r : catalogue()) families.push_back(r.family);
    std::string guess = nearest(family, families);
    if (!guess.empty() && guess != family)
      throw CLI::ValidationError(fmt::format("--family: no variants in '{}'; did you mean '{}'?", family, guess));
  }
  for (const nn::VariantInfo* v : rows) {
    if (ids_only) {
      fmt::print("{}\n", v->id);
    } else if (as_json) {
      out.push_back({{"id", v->id},
                     {"family", v->family},
                     {"kind", v->kind},
                     {"tier", tier_of(v->id)},
                     {"paper", v->paper},
                     {"summary", v->summary},
                     {"source", v->source},
                     {"extra", v->extra}});
    } else {
      fmt::print("{:<18} {:<10} {:<16} tier {:<5} {}\n", v->id, v->kind, v->family, tier_of(v->id), v->summary);
    }
  }
  if (as_json) fmt::print("{}\n", out.dump(2));
  if (!ids_only && !as_json)
    fmt::print("\n{} of {} registered variants shown ({} catalogue ids; `tensorzoo coverage` compares)\n", rows.size(),
               zoo::registry().all().size(), catalogue().size());
  return 0;
}

int info(const std::string& id) {
  const nn::VariantInfo* v = zoo::registry().find(id);
  const CatalogueRow* row = catalogue_row(id);
  if (!v && !row) {
    std::string guess = nearest(id, all_known_ids());
    throw Error(cat_str("info: unknown id '", id, "'", guess.empty() ? "" : "; did you mean '" + guess + "'?"));
  }
  fmt::print("{}{}\n", id, row ? "  —  " + row->name : "");
  if (row) {
    fmt::print("  family {}, kind {}, tier {}, paper {}\n", row->family, row->kind, row->tier, row->paper);
    fmt::print("  computes: {}\n  proof:    {}\n", row->core, row->proof);
  }
  if (!v) {
    fmt::print("  not implemented yet (in the catalogue, not in the registry)\n");
    return 0;
  }
  if (!row)
    fmt::print("  family {}, kind {}, paper {} (an extra: not a catalogue row)\n", v->family, v->kind, v->paper);
  fmt::print("  summary:  {}\n  source:   {}\n", v->summary, v->source);
  if (!v->keys.empty()) {
    fmt::print("  config keys:\n");
    for (const auto& k : v->keys)
      fmt::print("    {:<16} {:<7} default {:<14} {}\n", k.key, k.type, k.default_value, k.doc);
  }
  if (!v->example.empty()) fmt::print("  example:  tensorzoo train --config '{}'\n", v->example);
  return 0;
}

int coverage(bool show_missing) {
  std::map<std::string, std::pair<int, int>> by_family;  // have, total
  int have[4] = {0, 0, 0, 0}, total[4] = {0, 0, 0, 0};
  std::vector<std::string> missing_t1, missing;
  for (const auto& r : catalogue()) {
    bool ok = zoo::registry().find(r.id) != nullptr;
    by_family[r.family].first += ok;
    by_family[r.family].second += 1;
    have[r.tier] += ok, total[r.tier] += 1;
    have[0] += ok, total[0] += 1;
    if (!ok) (r.tier == 1 ? missing_t1 : missing).push_back(r.id);
  }
  fmt::print("registered: {} of {} catalogue ids (tier 1: {}/{}, tier 2: {}/{}, tier 3: {}/{})\n", have[0], total[0],
             have[1], total[1], have[2], total[2], have[3], total[3]);
  fmt::print("\n| family | registered | catalogue |\n|---|---:|---:|\n");
  for (auto& [f, n] : by_family) fmt::print("| {} | {} | {} |\n", f, n.first, n.second);
  std::vector<std::string> extras;
  for (const nn::VariantInfo* v : zoo::registry().all())
    if (!catalogue_row(v->id)) extras.push_back(v->id + (v->extra ? "" : " (NOT marked extra)"));
  if (!extras.empty()) fmt::print("\nextras (registered, not in the catalogue): {}\n", join(extras));
  fmt::print("\nmissing tier 1: {}\n", missing_t1.empty() ? "none" : join(missing_t1));
  if (show_missing) fmt::print("missing tiers 2-3: {}\n", join(missing));
  return 0;
}

// docs/variants.md: every registered id with its paper, what it computes, what its test
// proves, its config keys and an example — generated so that it cannot drift.
int docs(const std::string& path) {
  std::string md =
      "# Implemented variants\n\nGenerated by `tensorzoo docs` from the registry and the catalogue "
      "(`docs/catalogue.tsv`); do not edit by hand.\n\n";
  std::map<std::string, std::vector<const nn::VariantInfo*>> by_family;
  for (const nn::VariantInfo* v : zoo::registry().all()) by_family[v->family].push_back(v);
  md += cat_str(zoo::registry().all().size(), " variants registered.\n\n");
  for (auto& [family, vs] : by_family) {
    md += "## " + family + "\n\n";
    for (const nn::VariantInfo* v : vs) {
      const CatalogueRow* row = catalogue_row(v->id);
      md += "### `" + v->id + "`" + (row ? " — " + row->name : " (extra)") + "\n\n";
      md += "*" + v->kind + (row ? ", tier " + std::to_string(row->tier) : "") + ", " + v->paper + ", `" + v->source +
            "`*\n\n";
      md += v->summary + ".";
      if (row) md += " Computes: " + row->core + ". Its test proves: " + row->proof + ".";
      md += "\n\n";
      if (!v->keys.empty()) {
        md += "| key | type | default | meaning |\n|---|---|---|---|\n";
        for (const auto& k : v->keys)
          md += "| `" + k.key + "` | " + k.type + " | `" + k.default_value + "` | " + k.doc + " |\n";
        md += "\n";
      }
      if (!v->example.empty()) md += "Example: `tensorzoo train --config '" + v->example + "'`\n\n";
    }
  }
  if (path.empty() || path == "-") {
    fmt::print("{}", md);
  } else {
    std::ofstream out(path);
    if (!out) throw Error(cat_str("docs: cannot write ", path));
    out << md;
    fmt::print("wrote {} ({} variants)\n", path, zoo::registry().all().size());
  }
  return 0;
}

// One PNG per layout of the gallery (docs/sparse_attention.md): the tiles the kernel visits,
// and a markdown table of how many.
int layouts(const std::string& dir, int64_t N, int64_t H, int64_t cell) {
  if (dir.empty()) throw CLI::ValidationError("layouts: --out DIR is required");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(cat_str("layouts: cannot create ", dir, ": ", ec.message()));
  fmt::print("| picture | variant | pattern | tiles visited | of them full |\n|---|---|---|---:|---:|\n");
  for (const nn::GalleryLayout& g : nn::layout_gallery(N, H)) {
    const auto layout = std::make_shared<const kernels::BlockLayout>(g.pattern, H, N);
    const kernels::LayoutMask mask(layout);
    int64_t causal = 0, visited = 0, full = 0;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t qb = 0; qb < layout->nb; ++qb)
        for (int64_t kb = 0; kb <= qb; ++kb) {
          const TileUse u = tile_use(mask, h, qb, kb, true);
          ++causal, visited += u != TileUse::skipped, full += u == TileUse::full;
        }
    const std::string path = (std::filesystem::path(dir) / (g.file + ".png")).string();
    write_png(path, draw_layout(*layout, {.cell = cell}));
    fmt::print("| `{}.png` | {} | {} | {:.1f}% | {:.1f}% |\n", g.file, g.variant, g.what,
               100.0 * double(visited) / double(causal), visited ? 100.0 * double(full) / double(visited) : 0.0);
  }
  fmt::print(
      "\n{} positions, {} heads, tiles of {}: {} x {} tiles a head; percentages of the causal tiles (on "
      "and below the diagonal)\n",
      N, H, kernels::BlockLayout::kTile, (N + kernels::BlockLayout::kTile - 1) / kernels::BlockLayout::kTile,
      (N + kernels::BlockLayout::kTile - 1) / kernels::BlockLayout::kTile);
  return 0;
}

int check(const std::vector<std::string>& ids, bool learn, const conformance::Options& learning) {
  conformance::Options o = learning;
  o.learn = learn;
  int failures = 0;
  for (const std::string& id : ids) zoo::registry().get(id);  // unknown ids fail here, with the nearest one
  fmt::print("| id | check | result | measured | seconds | detail |\n|---|---|---|---|---:|---|\n");
  for (const std::string& id : ids) {
    double total = 0;
    for (const auto& r : conformance::run_checks(id, o)) {
      fmt::print("| {} | {} | {} | {} | {:.2f} | {} |\n", id, r.check, conformance::outcome_name(r.outcome), r.cell,
                 r.seconds, r.detail);
      failures += r.outcome == conformance::Outcome::failed;
      total += r.seconds;
    }
    fmt::print("| {} | all | | | {:.2f} | |\n", id, total);
  }
  return failures == 0 ? 0 : 1;
}
}  // namespace

void add_zoo_commands(CLI::App& app, std::vector<Command>& commands) {
  struct Args {
    std::string family, kind, id;
    int tier = 0;
    bool ids = false, json = false, missing = false, no_learn = false;
    std::vector<std::string> check_ids;
    conformance::Options learning;
    int64_t positions = 1024, heads = 4, cell = 7;
  };
  auto a = std::make_shared<Args>();
  auto* l = app.add_subcommand("list", "List the registered variants");
  l->add_option("--family", a->family, "Only this catalogue family (e.g. position, attention_core)");
  l->add_option("--kind", a->kind, "Only this kind (mixer, pos, ffn, norm, residual, model, ...)");
  l->add_option("--tier", a->tier, "Only this catalogue tier (1, 2 or 3)")->check(CLI::Range(1, 3));
  l->add_flag("--ids", a->ids, "One id a line, nothing else");
  l->add_flag("--json", a->json, "JSON array");
  commands.push_back({l, [a] { return list(a->family, a->kind, a->tier, a->ids, a->json); }});

  auto* i = app.add_subcommand("info", "Show a variant: paper, computation, proof, config keys, source");
  i->add_option("id", a->id, "Variant id (see `tensorzoo list`)")->required();
  commands.push_back({i, [a] { return info(a->id); }});

  auto* c = app.add_subcommand("coverage", "Registered variants against the catalogue");
  c->add_flag("--missing", a->missing, "Also list every missing tier-2/3 id");
  commands.push_back({c, [a] { return coverage(a->missing); }});

  auto* d = app.add_subcommand("docs", "Write the list of implemented variants as markdown (docs/variants.md)");
  d->add_option("--out", a->id, "Output file (default: standard output)");
  commands.push_back({d, [a] { return docs(a->id); }});

  auto* y = app.add_subcommand("layouts",
                               "Draw the sparse-attention layouts: one PNG per pattern of the tiles the kernel visits");
  y->add_option("--out", a->id, "Directory of the PNGs (created)")->required();
  y->add_option("--positions", a->positions, "Sequence length N")->check(CLI::Range(256, 1 << 14));
  y->add_option("--heads", a->heads, "Heads H (one panel each)")->check(CLI::Range(1, 16));
  y->add_option("--cell", a->cell, "Pixels a tile")->check(CLI::Range(1, 32));
  commands.push_back({y, [a] { return layouts(a->id, a->positions, a->heads, a->cell); }});

  auto* k = app.add_subcommand("check", "Run the conformance checks on variants (exit 1 if one fails)");
  k->add_option("ids", a->check_ids, "Variant ids")->required();
  k->add_flag("--no-learn", a->no_learn, "Skip the learning check (fast)");
  k->add_option("--seed", a->learning.learn_seed,
                "Shift the learning check's seeds (initialisation and batches): a pass that holds across "
                "seeds is not luck (0 = the suite's)");
  k->add_option("--tries", a->learning.learn_tries,
                "Seeds the learning check may try, from --seed on; the first to reach the bar counts (1: that "
                "seed alone)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  k->add_option("--steps", a->learning.try_steps, "Train the learning check this many steps instead of the "
                                                  "variant's budget (to find one)")
      ->check(CLI::Range(1, 1000000));
  k->add_option("--lr", a->learning.try_lr, "Learning rate of the learning check instead of the variant's")
      ->check(CLI::PositiveNumber);
  k->add_option("--warmup", a->learning.try_warmup, "Warmup steps of the learning check instead of the variant's")
      ->check(CLI::Range(1, 1000000));
  commands.push_back({k, [a] { return check(a->check_ids, !a->no_learn, a->learning); }});
}

}  // namespace tz::cli
