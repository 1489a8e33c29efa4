// The optim/ layer in one include: optimizers, schedules, gradient clipping, the recipe.
#pragma once

#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/lion.h"
#include "optim/optimizer.h"
#include "optim/recipe.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
