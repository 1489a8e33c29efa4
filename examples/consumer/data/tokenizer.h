// The application's own data/tokenizer.h. tensorzoo's headers live under tensorzoo/ and include
// each other as "tensorzoo/...", so a program's <data/tokenizer.h> is always its own.
#pragma once

inline constexpr int kApplicationTokenizer = 1;
