// The conformance suite: checks 1-6 of train/conformance.h on every registered variant, and
// check 7, that a proof test exists for it (tests/zoo/proofs_*.cpp). Prints the table.
#include <cstdio>
#include <map>

#include "models/zoo.h"
#include "tests/test_util.h"
#include "tests/zoo/proofs.h"
#include "train/conformance.h"

namespace tz::testing {

std::set<std::string>& proven_ids() {
  static std::set<std::string> ids;
  return ids;
}

TEST_CASE("zoo conformance: every registered variant passes checks 1-7") {
  const char* checks[] = {"build", "grad", "causal", "step", "io", "learns"};
  std::string table = "| id | build | grad | causal | step | io | learns | proof |\n|---|---|---|---|---|---|---|---|\n";
  int64_t incomplete = 0;
  for (const std::string& id : zoo::registry().ids()) {
    auto results = conformance::run_checks(id);
    std::map<std::string, conformance::CheckResult> by;
    for (auto& r : results) by[r.check] = r;
    table += "| " + id + " |";
    for (const char* c : checks) {
      auto it = by.find(c);
      table += std::string(" ") + (it == by.end() ? "-" : conformance::outcome_name(it->second.outcome)) + " |";
      if (it != by.end()) {
        INFO(id, std::string(" / ") + c + ": " + it->second.detail);
        CHECK(it->second.outcome != conformance::Outcome::failed);
      }
    }
    bool proven = proven_ids().count(id) > 0;
    incomplete += !proven;
    table += proven ? " test |\n" : " MISSING |\n";
    CHECK_MESSAGE(proven, "variant '", id, "' has no proof test (TZ_PROOF in tests/zoo/)");
  }
  std::printf("\nzoo conformance (%zu variants, %lld without a proof test):\n%s\n",
              zoo::registry().ids().size(), (long long)incomplete, table.c_str());
}

TEST_CASE("every proof test names a registered id") {
  for (const std::string& id : proven_ids())
    CHECK_MESSAGE(zoo::registry().find(id) != nullptr, "proof for unregistered id '", id, "'");
}

}  // namespace tz::testing
