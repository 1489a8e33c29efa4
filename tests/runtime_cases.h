// Test cases whose names are known only at run time (one per registered variant). A suite
// adds a registrar during static initialisation; main() calls every registrar before the
// run, once all static objects (the registry's typed keys) exist.
#pragma once

#include <vector>

namespace tz::testing {

using CaseRegistrar = void (*)();
std::vector<CaseRegistrar>& runtime_case_registrars();

}  // namespace tz::testing
