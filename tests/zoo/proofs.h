// Per-variant proof tests: the catalogue's `proof` property of each id, as a doctest test.
//
//   TZ_PROOF(rmsnorm, "invariant to input rescaling; equals LayerNorm (b=0) on zero-mean input") {
//     ... CHECKs ...
//   }
// registers the test "proof rmsnorm: ..." and records that `rmsnorm` has a proof; the
// conformance suite reports every registered id without one as incomplete (and fails).
#pragma once

#include <doctest/doctest.h>

#include <set>
#include <string>

namespace tz::testing {

std::set<std::string>& proven_ids();

struct ProofRegistrar {
  explicit ProofRegistrar(const char* id) { proven_ids().insert(id); }
};

}  // namespace tz::testing

#define TZ_PROOF(id, what)                                                        \
  static ::tz::testing::ProofRegistrar tz_proof_registrar_##id(#id);               \
  TEST_CASE("proof " #id ": " what)
