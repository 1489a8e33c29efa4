// Per-variant proof tests: the catalogue's `proof` property of each id, as a doctest test.
//
//   TZ_PROOF(rmsnorm, "invariant to input rescaling, equals LayerNorm (b=0) on zero-mean input") {
//     ... CHECKs ...
//     TZ_PROOF_NUMBER("max error", worst);   // the headline number the suite's table shows
//   }
// registers the test "proof rmsnorm: ..." and records that `rmsnorm` has a proof. While the
// test runs, TZ_PROOF_NUMBER records its measured number (the last one given wins); when it
// ends, its pass or fail is recorded too (a doctest listener in test_conformance.cpp), and
// the conformance table prints both. An id without a proof test fails its conformance case.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

namespace tz::testing {

// A tiny f64 LM (vocab 11, dim 16, depth 2, heads 2, context 16) with the keys of `extra` (a
// JSON object): the largest |step - forward| over the logits, decoding T tokens one by one
// (defined in proofs_position.cpp).
double lm_step_vs_forward(const std::string& extra, int64_t T = 10);

// Validation loss (nats per byte) of a 2-block, dim-32 byte LM with the given extra config
// fields after `steps` AdamW steps on the built-in grammar text (defined in
// proofs_metaformer.cpp).
double grammar_text_loss(const std::string& extra, int steps);

// False under TZ_CONFORMANCE_LEARN=0 (the sanitizer pass of scripts/test.sh): tests that
// train to an accuracy then take a few steps only and leave the accuracy to the release pass.
inline bool learning_runs() {
  const char* learn = std::getenv("TZ_CONFORMANCE_LEARN");
  return !(learn && std::string(learn) == "0");
}

// Training runs of minutes (a paper's task at a size where the claim shows) run only when
// TZ_LONG_PROOFS=1; the suite stays seconds per variant, and the numbers are in the docs.
inline bool long_runs() {
  const char* on = std::getenv("TZ_LONG_PROOFS");
  return on && std::string(on) == "1";
}

std::set<std::string>& proven_ids();

// What a proof test did in this run.
struct ProofOutcome {
  bool ran = false, passed = false;
  std::string number_name;  // what TZ_PROOF_NUMBER measured ("" when it gave none)
  double number = NAN;
};
std::map<std::string, ProofOutcome>& proof_outcomes();  // by id
// Records the headline number of the proof test that is running.
void record_proof_number(const std::string& name, double value);

struct ProofRegistrar {
  explicit ProofRegistrar(const char* id) { proven_ids().insert(id); }
};

// Whether this process runs the conformance case and proof of `id`. CTest runs the suite as
// several processes (tests/CMakeLists.txt), each with TZ_ZOO_SHARD=k/n: shard k takes every
// n-th registered id from the k-th. Without TZ_ZOO_SHARD, every id.
bool in_shard(const std::string& id);

}  // namespace tz::testing

// The test case always exists (so that filters and listings see it); its body runs in the
// id's shard only.
#define TZ_PROOF(id, what)                                           \
  static ::tz::testing::ProofRegistrar tz_proof_registrar_##id(#id); \
  static void tz_proof_body_##id();                                  \
  TEST_CASE("proof " #id ": " what) {                                \
    if (::tz::testing::in_shard(#id)) tz_proof_body_##id();          \
  }                                                                  \
  static void tz_proof_body_##id()

#define TZ_PROOF_NUMBER(name, value)                           \
  do {                                                         \
    const double tz_proof_value_ = (value);                    \
    ::tz::testing::record_proof_number(name, tz_proof_value_); \
    MESSAGE(name, " = ", tz_proof_value_);                     \
  } while (0)
