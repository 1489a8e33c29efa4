// Line plots of a CSV file's columns against its first column, drawn into a PNG by gnuplot
// (optional: apt-get install gnuplot-nox): a run's loss.png and the arena's curves.png. This is
// the command-line tool's: the library never runs another program.
//
// gnuplot runs without a shell (posix_spawnp, the script on its standard input), and no
// string of the caller's (paths, title, labels, curve titles) is pasted into the script or
// a command line: each is passed as an argument of `gnuplot -c` and read as ARG1..ARG9. Paths
// are made absolute first, because gnuplot treats a file name beginning with '<' or an
// output beginning with '|' as a shell command. So a directory named
// `x'; touch PWNED; echo '` is only a name.
#pragma once

#include <string>
#include <vector>

#include "train/arena.h"

namespace tz::cli {

struct Curve {
  int column = 2;       // 1-based CSV column (x is column 1)
  std::string title;    // empty: the column's header
  double width = 2;     // line width
  bool sparse = false;  // a column with empty cells (e.g. validation every N steps):
                        // its points are marked and joined across the gaps
};

struct PlotSpec {
  std::string csv;  // comma-separated, one header row
  std::string png;  // written by gnuplot
  std::string title;
  std::string xlabel = "step";
  std::string ylabel;
  bool log_y = false;
  std::vector<Curve> curves;  // at most 4 with their own titles (gnuplot -c takes 9 arguments)
};

// Draws spec.csv into spec.png. Returns true with message = the PNG's path, or false with
// the reason (gnuplot missing, or its first line of complaint) in message.
bool plot_png(const PlotSpec& spec, std::string& message);

// A run's log.csv (train and validation loss) into DIR/loss.png.
bool plot_loss(const std::string& dir, std::string& message);
// The arena's curves.csv of `models` models (arena::report writes it) into curves.png.
bool plot_arena(const arena::Options& options, size_t models, std::string& message);

}  // namespace tz::cli
