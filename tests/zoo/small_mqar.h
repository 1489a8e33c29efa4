// The small multi-query associative recall of the long proofs (proofs_gated_ssm.cpp: H3's
// claim; proofs_linear_rnn.cpp: the gated linear RNNs): data/tasks.h's mqar with 4
// key-value pairs, then the queried keys (8 keys, 8 values, 24 positions), 2 layers of width
// 32 and 4 heads, the arena's recipe at 3000 steps of lr 3e-3. Returns each model's held-out
// recall accuracy by name, printing the arena's numbers as it goes.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "train/arena.h"

namespace tz::testing {

inline std::map<std::string, double> small_mqar_accuracy(const std::vector<arena::Entry>& models,
                                                         const std::string& out_dir) {
  arena::Options o{.models = models,
                   .task = "mqar",
                   .steps = 3000,
                   .batch = 32,
                   .seq_len = 24,
                   .vocab = 17,
                   .task_options = {.num_pairs = 4},
                   .lr = 3e-3,
                   .base = R"({"dim": 32, "depth": 2, "heads": 4})",
                   .threads = 1,
                   .out_dir = out_dir};
  std::map<std::string, double> acc;
  for (const arena::Result& r : arena::run(o)) {
    MESSAGE(r.name, ": recall accuracy ", r.val_accuracy.at(1), ", val loss ", r.val_loss.at(1), " (", r.wall_s, " s)");
    acc[r.name] = r.val_accuracy.at(1);
  }
  return acc;
}

}  // namespace tz::testing
