// The doctest entry point shared by every suite: fresh allocations are filled with NaN so
// that a kernel that forgets to write part of its output fails its comparison.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "core/parallel.h"
#include "core/tensor.h"
#include "tests/runtime_cases.h"

std::vector<tz::testing::CaseRegistrar>& tz::testing::runtime_case_registrars() {
  static std::vector<CaseRegistrar> registrars;
  return registrars;
}

namespace {
int cases_run = 0;

// Counts the test cases that ran, so that a filter matching none fails instead of passing.
struct CaseCounter : doctest::IReporter {
  explicit CaseCounter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { ++cases_run; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("case_counter", 0, CaseCounter);

// CTest registers each case by name (doctest_discover_tests), and CMake splits a name at ';':
// the pieces match no case, and the case never runs.
bool names_are_ctest_safe() {
  bool ok = true;
  for (const doctest::detail::TestCase& t : doctest::detail::getRegisteredTests())
    if (std::strchr(t.m_name, ';')) {
      std::fprintf(stderr, "test case name with ';' (CTest would split it and run nothing): %s\n", t.m_name);
      ok = false;
    }
  return ok;
}

bool filtered(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--test-case=", 0) == 0 || a.rfind("-tc=", 0) == 0) return true;
  }
  return false;
}
}  // namespace

int main(int argc, char** argv) {
  tz::set_fill_uninitialized(true);
  // The kernel tests pick sizes just above the parallel grain to reach their threaded
  // paths; scripts/test.sh runs them with OMP_WAIT_POLICY=PASSIVE, whose larger grain would
  // turn those paths serial.
  tz::set_passive_wait_sizing(false);
  for (tz::testing::CaseRegistrar add_cases : tz::testing::runtime_case_registrars()) add_cases();
  if (!names_are_ctest_safe()) return 2;
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit()) return result;  // --help, --list-test-cases, ...
  if (result == 0 && filtered(argc, argv) && cases_run == 0) {
    std::fprintf(stderr, "no test case matches the --test-case filter: nothing ran\n");
    return 1;
  }
  return result;
}
