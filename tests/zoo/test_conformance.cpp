// The conformance suite: one test case per registered variant ("conformance ID") runs checks
// 1-6 of train/conformance.h and requires a proof test (check 7, tests/zoo/proofs_*.cpp).
// A doctest listener records each proof test's pass/fail and headline number, and prints the
// table of every variant that ran once, at the end of the run, with the time each took
// against the suite's budget of 3 minutes on 2 cores. CTest runs the suite as shards (see
// in_shard in proofs.h); each shard leaves its rows in a file, and the case "conformance
// table" merges them into one table and checks that every id ran in exactly one shard.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "core/creation.h"
#include "models/zoo.h"
#include "tests/runtime_cases.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "train/conformance.h"

namespace tz::testing {

std::set<std::string>& proven_ids() {
  static std::set<std::string> ids;
  return ids;
}

std::map<std::string, ProofOutcome>& proof_outcomes() {
  static std::map<std::string, ProofOutcome> outcomes;
  return outcomes;
}

namespace {
struct Shard {
  int k = 0, n = 1;
};

// TZ_ZOO_SHARD=k/n, read once; a malformed value stops the run rather than run a wrong subset.
const Shard& shard() {
  static const Shard s = [] {
    Shard r;
    const char* e = std::getenv("TZ_ZOO_SHARD");
    if (!e) return r;
    char slash = 0;
    std::istringstream in(e);
    if (!(in >> r.k >> slash >> r.n) || slash != '/' || r.n < 1 || r.k < 0 || r.k >= r.n || !in.eof()) {
      std::fprintf(stderr, "test_zoo: TZ_ZOO_SHARD must be k/n with 0 <= k < n, got '%s'\n", e);
      std::exit(2);
    }
    return r;
  }();
  return s;
}

std::string shard_file(int k) { return cat_str(TZ_BINARY_DIR "/zoo_conformance.shard", k); }

constexpr double kBudgetSeconds = 180;  // the whole suite, on 2 cores
const char* const kChecks[] = {"build", "grad", "causal", "step", "io", "learns"};

std::string& running_proof() {  // the id of the proof test running, or ""
  static std::string id;
  return id;
}

struct Row {
  std::vector<conformance::CheckResult> results;
  double seconds = 0;
};
std::map<std::string, Row>& rows() {
  static std::map<std::string, Row> r;
  return r;
}

// The learns overrides a registration states, as the suite prints them ("" = none).
std::string learn_override(const nn::VariantInfo& v) {
  conformance::Learning l{.steps = v.learn_steps, .lr = v.learn_lr, .task = v.learn_task, .reason = v.learn_reason};
  return l.override_text();
}

// TZ_CONFORMANCE_LEARN=0 skips the learns check: the sanitizer pass of scripts/test.sh sets it,
// where thousands of training steps would prove nothing more about memory safety than the
// few that every other check (and the "does not copy" planted bug) already runs.
conformance::Options suite_options() { return {.learn = testing::learning_runs()}; }

void run_variant(const std::string& id) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<conformance::CheckResult> results = conformance::run_checks(id, suite_options());
  for (const auto& r : results) {
    INFO(id, " / ", r.check, ": ", r.detail);
    CHECK(r.outcome != conformance::Outcome::failed);
  }
  CHECK_MESSAGE(proven_ids().count(id) > 0, "variant '", id, "' has no proof test (TZ_PROOF in tests/zoo/)");
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rows()[id] = {results, seconds};
  std::printf("conformance %-26s %6.2f s\n", id.c_str(), seconds);
  std::fflush(stdout);
}

std::string fixed_1(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", x);
  return buf;
}

std::string proof_cell(const std::string& id) {
  if (!proven_ids().count(id)) return "MISSING";
  auto it = proof_outcomes().find(id);
  if (it == proof_outcomes().end() || !it->second.ran) return "not run";
  const ProofOutcome& o = it->second;
  std::string cell = o.passed ? "pass" : "FAIL";
  if (!o.number_name.empty()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", o.number);
    cell += " " + o.number_name + " " + buf;
  }
  return cell;
}

// The table's row of one variant, and how many of its checks failed.
std::pair<std::string, int64_t> table_row(const std::string& id, const Row& row) {
  std::map<std::string, const conformance::CheckResult*> by;
  for (const auto& r : row.results) by[r.check] = &r;
  std::string line = "| " + id + " |";
  int64_t failed = 0;
  for (const char* c : kChecks) {
    auto it = by.find(c);
    if (it == by.end()) {
      line += " - |";
      continue;
    }
    failed += it->second->outcome == conformance::Outcome::failed;
    std::string cell = conformance::outcome_name(it->second->outcome);
    if (!it->second->cell.empty() && it->second->outcome != conformance::Outcome::not_applicable)
      cell += " " + it->second->cell;
    line += " " + cell + " |";
  }
  return {line + cat_str(" ", proof_cell(id), " | ", fixed_1(row.seconds), " |"), failed};
}

// The rows of the variants that ran, by id: the markdown line, seconds and failed checks.
struct TableRow {
  std::string line;
  double seconds = 0;
  int64_t failed = 0;
};

std::string report_text(const std::map<std::string, TableRow>& table) {
  std::string lines, overrides;
  double total = 0;
  int64_t failed = 0;
  for (const auto& [id, r] : table) {
    lines += r.line + "\n";
    total += r.seconds;
    failed += r.failed;
  }
  for (const nn::VariantInfo* v : zoo::registry().all())
    if (table.count(v->id) && !learn_override(*v).empty()) overrides += "  " + v->id + ": " + learn_override(*v) + "\n";
  const size_t n = zoo::registry().ids().size();
  return cat_str("zoo conformance: ", table.size(), " of ", n, " variants, ", failed, " failed checks, ",
                 fixed_1(total), " s (budget ", kBudgetSeconds,
                 " s for the suite on 2 cores: ", fixed_1(kBudgetSeconds / double(n)),
                 " s per variant)\n| id | build | grad | causal | step | io | learns | proof | s |\n"
                 "|---|---|---|---|---|---|---|---|---:|\n",
                 lines, "\nlearns overrides (default: copy, 400 steps, peak lr 1e-2, accuracy >= 0.9):\n",
                 overrides.empty() ? "  none\n" : overrides);
}

void print_table() {
  if (rows().empty()) return;
  std::map<std::string, TableRow> table;
  for (const auto& [id, row] : rows()) {
    auto [line, failed] = table_row(id, row);
    table[id] = {line, row.seconds, failed};
  }
  const std::string report = report_text(table);
  std::printf("\n%s\n", report.c_str());
  std::fflush(stdout);
  if (std::getenv("TZ_ZOO_SHARD")) {  // the shard's rows, tab-separated, for the merge
    std::ofstream out(shard_file(shard().k));
    for (const auto& [id, r] : table) out << id << '\t' << r.seconds << '\t' << r.failed << '\t' << r.line << '\n';
  } else if (rows().size() == zoo::registry().ids().size()) {
    // A run over every variant leaves its table beside the build, for scripts/test.sh to show.
    std::ofstream(TZ_BINARY_DIR "/zoo_conformance.md") << report;
  }
}

// Records proof outcomes and prints the table at the end of the run.
struct ConformanceListener : doctest::IReporter {
  explicit ConformanceListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override { print_table(); }
  void test_case_start(const doctest::TestCaseData& d) override {
    const std::string name = d.m_name;
    running_proof().clear();
    if (name.compare(0, 6, "proof ") != 0) return;
    const std::string id = name.substr(6, name.find(':') - 6);
    if (in_shard(id)) running_proof() = id;
  }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& s) override {
    if (running_proof().empty()) return;
    ProofOutcome& o = proof_outcomes()[running_proof()];
    o.ran = true;
    o.passed = s.testCaseSuccess;
    running_proof().clear();
  }
  void test_case_exception(const doctest::TestCaseException&) override {
    if (!running_proof().empty()) proof_outcomes()[running_proof()].passed = false;
  }
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("conformance_table", 1, ConformanceListener);
}  // namespace

bool in_shard(const std::string& id) {
  if (shard().n == 1) return true;
  const std::vector<std::string>& ids = zoo::registry().ids();
  const auto it = std::find(ids.begin(), ids.end(), id);
  const int64_t index = it == ids.end() ? 0 : it - ids.begin();  // unregistered: shard 0 reports it
  return index % shard().n == shard().k;
}

void record_proof_number(const std::string& name, double value) {
  if (running_proof().empty()) return;
  ProofOutcome& o = proof_outcomes()[running_proof()];
  o.number_name = name;
  o.number = value;
}

// One test case per registered id ("conformance ID"), registered at run time from the
// registry itself, so that a new variant gets its case without being listed here.
constexpr size_t kMaxVariants = 512;

std::vector<std::string>& case_ids() {
  static std::vector<std::string> ids;
  return ids;
}

template <size_t I>
void variant_case() {
  run_variant(case_ids()[I]);
}

template <size_t... I>
constexpr std::array<doctest::detail::funcType, sizeof...(I)> variant_cases(std::index_sequence<I...>) {
  return {&variant_case<I>...};
}

void register_variant_cases() {
  static constexpr auto cases = variant_cases(std::make_index_sequence<kMaxVariants>());
  static std::deque<std::string> names;  // doctest keeps the pointers
  for (const std::string& id : zoo::registry().ids())
    if (in_shard(id)) case_ids().push_back(id);
  if (std::getenv("TZ_ZOO_SHARD")) std::remove(shard_file(shard().k).c_str());  // no stale rows
  if (zoo::registry().ids().size() > kMaxVariants) {
    std::fprintf(stderr, "test_conformance: %zu variants, more than kMaxVariants = %zu: raise it\n",
                 zoo::registry().ids().size(), kMaxVariants);
    std::exit(2);
  }
  for (size_t i = 0; i < case_ids().size(); ++i) {
    names.push_back("conformance " + case_ids()[i]);
    doctest::detail::regTest(
        doctest::detail::TestCase(cases[i], __FILE__, __LINE__, doctest_detail_test_suite_ns::getCurrentTestSuite()) *
        names.back().c_str());
  }
}
[[maybe_unused]] const bool variant_cases_registered =
    (runtime_case_registrars().push_back(&register_variant_cases), true);

TEST_CASE("conformance: every proof names a registered id") {
  for (const std::string& id : proven_ids())
    CHECK_MESSAGE(zoo::registry().find(id) != nullptr, "proof for unregistered id '", id, "'");
}

// The merge of the shards' rows (tests/CMakeLists.txt runs it after them, with --no-skip and
// TZ_ZOO_SHARDS=n): one table, written beside the build for scripts/test.sh to show.
TEST_CASE("conformance table: every variant ran in exactly one shard" * doctest::skip()) {
  const char* e = std::getenv("TZ_ZOO_SHARDS");
  REQUIRE_MESSAGE(e, "TZ_ZOO_SHARDS (the number of shards) is not set");
  const int n = std::atoi(e);
  REQUIRE(n >= 1);
  std::map<std::string, TableRow> table;
  std::map<std::string, int> runs;
  for (int k = 0; k < n; ++k) {
    std::ifstream in(shard_file(k));
    REQUIRE_MESSAGE(in, "no rows from shard ", k, " of ", n, " (", shard_file(k), ")");
    std::string id, seconds, failed, line;
    while (std::getline(in, id, '\t') && std::getline(in, seconds, '\t') && std::getline(in, failed, '\t') &&
           std::getline(in, line)) {
      table[id] = {line, std::stod(seconds), std::stoll(failed)};
      ++runs[id];
    }
  }
  for (const std::string& id : zoo::registry().ids()) CHECK_MESSAGE(runs[id] == 1, id, " ran in ", runs[id], " shards");
  CHECK(table.size() == zoo::registry().ids().size());
  const std::string report = report_text(table);
  std::printf("\n%s\n", report.c_str());
  std::ofstream(TZ_BINARY_DIR "/zoo_conformance.md") << report;
}

}  // namespace tz::testing
