// tensorzoo: the whole public API in one include.
#pragma once

#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/copy.h"
#include "core/creation.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/tensor.h"
