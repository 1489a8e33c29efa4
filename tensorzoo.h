// tensorzoo: the public C++ API in one include, #include <tensorzoo/tensorzoo.h> (the C API:
// tensorzoo_c.h). What this header declares is what the shared library exports: the library
// is compiled with hidden symbols and reads this header first, with default visibility.
// Embedding a trained model: embed/text_model.h (tz::TextModel), threads and their waiting:
// core/parallel.h (tz::set_num_threads, tz::set_wait_policy).
#pragma once

#pragma GCC visibility push(default)
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include "data/bpe.h"
#include "data/tasks.h"
#include "data/text_dataset.h"
#include "data/tokenizer.h"
#include "embed/text_model.h"
#include "models/generate.h"
#include "models/gpt.h"
#include "models/weights.h"
#include "nn/attention/attention.h"
#include "nn/ffn/mlp.h"
#include "nn/layers.h"
#include "optim/optim.h"
#pragma GCC visibility pop
