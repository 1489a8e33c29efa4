// The zoo's models whose inputs are not one token sequence (x-transformers' XTransformer,
// ViTransformerWrapper and ContinuousTransformerWrapper), all behind models::Model.
#pragma once

#include "models/continuous.h"
#include "models/encoder_decoder.h"
#include "models/vit.h"
