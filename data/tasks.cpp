// The synthetic tasks of tasks.h, one section per task: what it measures, the paper, the
// example layout. Every example is built as a token sequence plus the set of scored
// positions; the tests re-derive each answer from the inputs alone with a small solver.
#include "data/tasks.h"

#include "core/text.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace tz::data {

namespace {

// Random helpers over the counter-based generator (deterministic for its state).
int64_t randint(Generator& gen, int64_t low, int64_t high) { return gen.randint(low, high); }

// k distinct values from [0, n), in increasing order (partial Fisher-Yates, then sort).
std::vector<int64_t> sorted_sample(Generator& gen, int64_t n, int64_t k) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  for (int64_t i = 0; i < k; ++i) std::swap(all[size_t(i)], all[size_t(randint(gen, i, n))]);
  all.resize(size_t(k));
  std::sort(all.begin(), all.end());
  return all;
}

// k distinct values from [0, n) in random order.
std::vector<int64_t> shuffled_sample(Generator& gen, int64_t n, int64_t k) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  for (int64_t i = 0; i < k; ++i) std::swap(all[size_t(i)], all[size_t(randint(gen, i, n))]);
  all.resize(size_t(k));
  return all;
}

// k distinct indices of w drawn one after another, each with probability proportional to
// its weight among those not drawn yet (numpy's choice(replace=False, p=w), which Zoology
// uses), in the order drawn. Exponential clocks: index g rings at E_g / w_g, E_g ~ Exp(1);
// the first to ring is g with probability w_g / sum(w) and, the clocks being memoryless,
// the next among the rest likewise, so the k earliest in order are exactly that draw
// (Efraimidis & Spirakis 2006, "Weighted random sampling with a reservoir"), in one pass
// over the weights instead of k.
std::vector<int64_t> weighted_sample_in_order(Generator& gen, const std::vector<double>& w, int64_t k) {
  std::vector<std::pair<double, int64_t>> ring(w.size());
  for (size_t g = 0; g < w.size(); ++g)
    ring[g] = {-std::log1p(-gen.uniform()) / w[g], int64_t(g)};  // uniform() is in [0, 1)
  std::partial_sort(ring.begin(), ring.begin() + k, ring.end());
  std::vector<int64_t> out(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) out[size_t(i)] = ring[size_t(i)].second;
  return out;
}

// vocab_size 0 means the task's default.
TaskOptions with_vocab(TaskOptions o, int64_t default_vocab) {
  if (o.vocab_size == 0) o.vocab_size = default_vocab;
  return o;
}
constexpr int64_t kDefaultVocab = 64;

void check_common(const std::string& task, const TaskOptions& o, int64_t min_vocab, int64_t min_len) {
  TZ_CHECK(o.vocab_size >= min_vocab, task, ": vocab_size must be >= ", min_vocab,
           " (special tokens plus at least two data tokens), got ", o.vocab_size);
  TZ_CHECK(o.seq_len >= min_len, task, ": seq_len must be >= ", min_len, ", got ", o.seq_len);
}

// Fills targets from a sequence s of length T + 1 in next-token form: y[t] = s[t + 1] at
// the scored positions t in [first, first + count), kIgnoreIndex elsewhere.
void shifted_targets(const std::vector<int64_t>& s, int64_t* x, int64_t* y, int64_t T, int64_t first, int64_t count) {
  for (int64_t t = 0; t < T; ++t) {
    x[t] = s[size_t(t)];
    y[t] = (t >= first && t < first + count) ? s[size_t(t + 1)] : kIgnoreIndex;
  }
}

// ---- copy ------------------------------------------------------------------------------
// Measures: exact reproduction of an arbitrary sequence (memory that grows with length).
// Attention looks back at the right offset; a fixed-size recurrent state must compress n
// random tokens and fails once n log V bits exceed it. The copying task goes back to
// Graves et al. 2014 (Neural Turing Machines, arXiv:1410.5401); Jelassi et al. 2024
// ("Repeat After Me", arXiv:2402.01032) use it to separate transformers from SSMs.
// Layout (T + 1 tokens, n = copy_len): x1..xn SEP x1..xn PAD..., scored after SEP.
class CopyTask : public Task {
 public:
  explicit CopyTask(TaskOptions o) : Task(resolve(o)) {}
  std::string name() const override { return "copy"; }
  std::string description() const override {
    return cat_str("copy: reproduce ", options_.copy_len, " random tokens after a separator");
  }

 private:
  static TaskOptions resolve(TaskOptions o) {
    o = with_vocab(o, kDefaultVocab);
    check_common("copy", o, 4, 2);
    if (o.copy_len == 0) o.copy_len = o.seq_len / 2;
    TZ_CHECK(o.copy_len >= 1 && 2 * o.copy_len <= o.seq_len, "copy: copy_len must be in [1, ", o.seq_len / 2,
             "] (the tokens and their copy fit in seq_len ", o.seq_len, "), got ", o.copy_len);
    return o;
  }
  void fill_example(int64_t* x, int64_t* y, Generator& gen) const override {
    const int64_t T = options_.seq_len, n = options_.copy_len, V = options_.vocab_size;
    std::vector<int64_t> s(size_t(T + 1), kPadToken);
    for (int64_t i = 0; i < n; ++i) s[size_t(i)] = s[size_t(n + 1 + i)] = randint(gen, 2, V);
    s[size_t(n)] = kSepToken;
    shifted_targets(s, x, y, T, n, n);  // reading SEP predicts x1, ..., reading x(n-1) -> xn
  }
};

// ---- copy_blank ------------------------------------------------------------------------
// Copy with the answers hidden: x1..xn SEP, then PAD where the copy goes, the target at the
// i-th position from SEP on being x(i+1). Copy's teacher-forced inputs show each answer one
// position after it is asked for, which a non-causal (encoder) mixer simply reads; here it
// must look the token up by position, as a causal one does.
class CopyBlankTask : public Task {
 public:
  explicit CopyBlankTask(TaskOptions o) : Task(resolve(o)) {}
  std::string name() const override { return "copy_blank"; }
  std::string description() const override {
    return cat_str("copy_blank: reproduce ", options_.copy_len, " random tokens after a separator, into blanks");
  }

 private:
  static TaskOptions resolve(TaskOptions o) {
    o = with_vocab(o, kDefaultVocab);
    check_common("copy_blank", o, 4, 2);
    if (o.copy_len == 0) o.copy_len = o.seq_len / 2;
    TZ_CHECK(o.copy_len >= 1 && 2 * o.copy_len <= o.seq_len, "copy_blank: copy_len must be in [1, ", o.seq_len / 2,
             "] (the tokens and their blanks fit in seq_len ", o.seq_len, "), got ", o.copy_len);
    return o;
  }
  void fill_example(int64_t* x, int64_t* y, Generator& gen) const override {
    const int64_t T = options_.seq_len, n = options_.copy_len, V = options_.vocab_size;
    for (int64_t t = 0; t < T; ++t) x[t] = kPadToken, y[t] = kIgnoreIndex;
    for (int64_t i = 0; i < n; ++i) x[i] = y[n + i] = randint(gen, 2, V);
    x[n] = kSepToken;
  }
};

// ---- selective_copy --------------------------------------------------------------------
// Measures: content-aware filtering: remember the data tokens, skip the noise between them
// at random places. A time-invariant recurrence (S4, long convolutions) cannot tell noise
// from data by position; a selective (input-dependent) state can. Introduced as
// "Selective Copying" by Gu & Dao 2023, Mamba (arXiv:2312.00752), section 3.1.
// Layout (T + 1 tokens, n = copy_len, R = T - n): R positions holding n data tokens at
// random places and NOISE elsewhere, then MARK, then the n data tokens in order (scored).
class SelectiveCopyTask : public Task {
 public:
  explicit SelectiveCopyTask(TaskOptions o) : Task(resolve(o)) {}
  std::string name() const override { return "selective_copy"; }
  std::string description() const override {
    return cat_str("selective_copy: output the ", options_.copy_len, " data tokens scattered among noise, in order");
  }

 private:
  static TaskOptions resolve(TaskOptions o) {
    o = with_vocab(o, kDefaultVocab);
    check_common("selective_copy", o, 5, 2);
    if (o.copy_len == 0) o.copy_len = std::max<int64_t>(1, o.seq_len / 8);
    TZ_CHECK(o.copy_len >= 1 && 2 * o.copy_len <= o.seq_len,
             "selective_copy: copy_len must be "
             "in [1, ",
             o.seq_len / 2, "] (the scattered tokens and their copy fit in seq_len ", o.seq_len, "), got ", o.copy_len);
    return o;
  }
  void fill_example(int64_t* x, int64_t* y, Generator& gen) const override {
    const int64_t T = options_.seq_len, n = options_.copy_len, V = options_.vocab_size;
    const int64_t R = T - n;  // the region holding data and noise
    std::vector<int64_t> s(size_t(T + 1), kNoiseToken);
    std::vector<int64_t> where = sorted_sample(gen, R, n);
    for (int64_t i = 0; i < n; ++i) s[size_t(where[size_t(i)])] = s[size_t(R + 1 + i)] = randint(gen, 3, V);
    s[size_t(R)] = kSepToken;
    shifted_targets(s, x, y, T, R, n);
  }
};

// ---- selective_copy_mamba ---------------------------------------------------------------
// Selective Copying as the Mamba paper runs it (Gu & Dao 2023, arXiv:2312.00752, section 3.1
// and appendix E.1: length 4096, vocabulary 16 with the noise and marker tokens, 16 tokens
// to memorise), with the token layout of the S4 repository's copying generator it uses:
// noise is id 0, the marker V - 1, data ids [1, V - 1). Unlike selective_copy the answers
// are never fed back: the model reads n markers and must emit d1..dn from memory.
// Layout (T tokens, n = copy_len, R = T - n): R positions of NOISE holding d1..dn at random
// places (in order), then n MARKs; the target at the i-th MARK is di. The paper's "length
// 4096" is taken as T, the whole input (S4's generator counts L = T - 2n noise tokens).
class SelectiveCopyMambaTask : public Task {
 public:
  explicit SelectiveCopyMambaTask(TaskOptions o) : Task(resolve(o)) {}
  std::string name() const override { return "selective_copy_mamba"; }
  std::string description() const override {
    return cat_str("selective_copy_mamba: after the markers, output the ", options_.copy_len,
                   " data tokens scattered among noise (Mamba's layout)");
  }

 private:
  static TaskOptions resolve(TaskOptions o) {
    o = with_vocab(o, 16);
    check_common("selective_copy_mamba", o, 4, 2);
    if (o.copy_len == 0) o.copy_len = std::min<int64_t>(16, std::max<int64_t>(1, o.seq_len / 4));
    TZ_CHECK(o.copy_len >= 1 && 2 * o.copy_len <= o.seq_len,
             "selective_copy_mamba: copy_len "
             "must be in [1, ",
             o.seq_len / 2,
             "] (n data tokens among seq_len - n noise "
             "positions, then n markers, in seq_len ",
             o.seq_len, "), got ", o.copy_len);
    return o;
  }
  void fill_example(int64_t* x, int64_t* y, Generator& gen) const override {
    const int64_t T = options_.seq_len, n = options_.copy_len, V = options_.vocab_size;
    const int64_t R = T - n, marker = V - 1;
    for (int64_t t = 0; t < T; ++t) {
      x[t] = kPadToken;
      y[t] = kIgnoreIndex;
    }  // noise: id 0
    std::vector<int64_t> where = sorted_sample(gen, R, n);
    for (int64_t i = 0; i < n; ++i) {
      int64_t d = randint(gen, 1, marker);
      x[where[size_t(i)]] = d;
      x[R + i] = marker;
      y[R + i] = d;
    }
  }
};

// ---- mqar --------------------------------------------------------------------------------
// Measures: multi-query associative recall: bind keys to values, then answer several
// queries, each at a position the model cannot predict. The gap in MQAR accuracy explains
// most of the perplexity gap between attention and gated-convolution / recurrent models.
// Introduced in Zoology (Arora et al. 2023, arXiv:2312.04927).
// Layout (T tokens, N = num_pairs, Q = num_queries): k1 v1 k2 v2 .. kN vN, then PAD with Q
// of the keys (distinct, random order) at random positions; the target at a query is its
// value (the model reads the key and predicts the value, as in Zoology). Keys are distinct
// within an example; values may repeat.
class MqarTask : public Task {
 public:
  explicit MqarTask(TaskOptions o) : Task(resolve(o)) {}
  std::string name() const override { return "mqar"; }
  std::string description() const override {
    return cat_str("mqar: recall the values of ", options_.num_queries, " keys among ", options_.num_pairs,
                   " key-value pairs");
  }
  static int64_t num_keys(int64_t V) { return (V - 1) / 2; }

 private:
  static TaskOptions resolve(TaskOptions o) {
    o = with_vocab(o, kDefaultVocab);
    check_common("mqar", o, 5, 3);
    if (o.num_queries == 0) o.num_queries = o.num_pairs;
    const int64_t K = num_keys(o.vocab_size);
    TZ_CHECK(o.num_pairs >= 1, "mqar: num_pairs must be >= 1, got ", o.num_pairs);
    TZ_CHECK(o.num_pairs <= K, "mqar: num_pairs ", o.num_pairs, " exceeds the ", K, " distinct keys of vocab_size ",
             o.vocab_size, " (keys use ids [1, ", 1 + K, "), values [", 1 + K, ", ", o.vocab_size, "))");
    TZ_CHECK(o.num_queries >= 1 && o.num_queries <= o.num_pairs,
             "mqar: num_queries must be "
             "in [1, num_pairs = ",
             o.num_pairs, "], got ", o.num_queries);
    TZ_CHECK(2 * o.num_pairs + o.num_queries <= o.seq_len,
             "mqar: too many pairs for the "
             "length: ",
             o.num_pairs, " pairs and ", o.num_queries, " queries need 2 * ", o.num_pairs, " + ", o.num_queries, " = ",
             2 * o.num_pairs + o.num_queries, " positions, but seq_len is ", o.seq_len);
    return o;
  }
  void fill_example(int64_t* x, int64_t* y, Generator& gen) const override {
    const int64_t T = options_.seq_len, N = options_.num_pairs, Q = options_.num_queries;
    const int64_t V = options_.vocab_size, K = num_keys(V);
    std::vector<int64_t> keys = shuffled_sample(gen, K, N), values(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) {
      keys[size_t(i)] += 1;  // ids [1, 1 + K)
      values[size_t(i)] = randint(gen, 1 + K, V);
    }
    for (int64_t t = 0; t < T; ++t) {
      x[t] = kPadToken;
      y[t] = kIgnoreIndex;
    }
    for (int64_t i = 0; i < N; ++i) {
      x[2 * i] = keys[size_t(i)];
      x[2 * i + 1] = values[size_t(i)];
    }
    std::vector<int64_t> which = shuffled_sample(gen, N, Q);        // pairs queried
    std::vector<int64_t> where = sorted_sample(gen, T - 2 * N, Q);  // query positions
    for (int64_t j = 0; j < Q; ++j) {
      int64_t t = 2 * N + where[size_t(j)], p = which[size_t(j)];
      x[t] = keys[size_t(p)];
      y[t] = values[size_t(p)];
    }
  }
};

// ---- mqar_zoology -----------------------------------------------------------------------
// MQAR exactly as Zoology generates it (Arora et al. 2023, "Zoology: Measuring and Improving
// Recall in Efficient Language Models", arXiv:2312.04927, appendix on MQAR; the zoology
// repository's multiquery_ar). Keys and values come from disjoint halves of the vocabulary,
// keys [1, V/2) and values [V/2, V), both without repetition. The N pairs come first; the
// T - 2N positions after them hold S = (T - 2N) / 2 even slots, and pair i is queried at
// slot g_i (position 2N + 2 g_i), where g_1, g_2, .. are drawn one after another without
// repetition with P(g) = (g + 1)^(a - 1) / sum_h (h + 1)^(a - 1) (a = power_a; in real text
// the gap between repeated bigrams follows such a power law). As in Zoology, pair i takes
// the i-th slot drawn, so earlier pairs tend to be asked sooner. Every other position is 0
// (random ids in [0, V) with random_fill). The target at a query is its value; nothing
// else is scored.
class MqarZoologyTask : public Task {
 public:
  explicit MqarZoologyTask(TaskOptions o) : Task(resolve(o)) {
    const int64_t S = (options_.seq_len - 2 * options_.num_pairs) / 2;
    slot_weight_.resize(size_t(S));
    for (int64_t g = 0; g < S; ++g) slot_weight_[size_t(g)] = std::pow(double(g + 1), options_.power_a - 1);
  }
  std::string name() const override { return "mqar_zoology"; }
  std::string description() const override {
    return cat_str("mqar_zoology: recall the values of all ", options_.num_pairs,
                   " keys, queried at power-law gaps (power_a ", options_.power_a, ")");
  }

 private:
  static TaskOptions resolve(TaskOptions o) {
    o = with_vocab(o, 8192);
    check_common("mqar_zoology", o, 4, 4);
    if (o.num_queries == 0) o.num_queries = o.num_pairs;
    const int64_t N = o.num_pairs, V = o.vocab_size, K = V / 2 - 1;
    TZ_CHECK(N >= 1, "mqar_zoology: num_pairs must be >= 1, got ", N);
    TZ_CHECK(N <= K, "mqar_zoology: num_pairs ", N, " exceeds the ", K,
             " distinct keys of "
             "vocab_size ",
             V, " (keys use ids [1, ", V / 2, "), values [", V / 2, ", ", V, "))");
    TZ_CHECK(o.num_queries == N,
             "mqar_zoology: every pair is queried once, so num_queries "
             "must be 0 or num_pairs = ",
             N, ", got ", o.num_queries);
    TZ_CHECK(4 * N <= o.seq_len, "mqar_zoology: seq_len ", o.seq_len,
             " is too short for "
             "num_pairs ",
             N, ": the pairs take 2 * ", N,
             " positions and each query its own "
             "even slot after them, so seq_len must be >= 4 * num_pairs = ",
             4 * N);
    TZ_CHECK(std::isfinite(o.power_a) && o.power_a > 0,
             "mqar_zoology: power_a must be > 0 "
             "(Zoology's default 0.01; 1 places the queries uniformly), got ",
             o.power_a);
    return o;
  }
  void fill_example(int64_t* x, int64_t* y, Generator& gen) const override {
    const int64_t T = options_.seq_len, N = options_.num_pairs, V = options_.vocab_size;
    const int64_t half = V / 2;
    std::vector<int64_t> keys = shuffled_sample(gen, half - 1, N);    // + 1: ids [1, half)
    std::vector<int64_t> values = shuffled_sample(gen, V - half, N);  // + half: [half, V)
    std::vector<int64_t> slots = weighted_sample_in_order(gen, slot_weight_, N);
    for (int64_t t = 0; t < T; ++t) {
      x[t] = kPadToken;
      y[t] = kIgnoreIndex;
    }
    for (int64_t i = 0; i < N; ++i) {
      const int64_t k = 1 + keys[size_t(i)], v = half + values[size_t(i)];
      const int64_t q = 2 * N + 2 * slots[size_t(i)];
      x[2 * i] = k;
      x[2 * i + 1] = v;
      x[q] = k;
      y[q] = v;
    }
    if (options_.random_fill)
      for (int64_t t = 2 * N; t < T; ++t)
        if (y[t] == kIgnoreIndex) x[t] = randint(gen, 0, V);
  }
  std::vector<double> slot_weight_;  // (g + 1)^(a - 1) for the S slots
};

// ---- induction_heads ---------------------------------------------------------------------
// Measures: the induction mechanism "[A][B] ... [A] -> [B]": find the earlier occurrence of
// the current token and copy the token that followed it — the circuit behind in-context
// learning, described by Olsson et al. 2022 ("In-context Learning and Induction Heads",
// arXiv:2209.11895). This single-trigger synthetic form follows H3 (Fu et al. 2023,
// arXiv:2212.14052).
// Layout (T tokens): random data tokens, with TRIG at a random position p <= T - 3 and again
// at T - 1; the one scored target, at T - 1, is the token at p + 1.
class InductionHeadsTask : public Task {
 public:
  explicit InductionHeadsTask(TaskOptions o) : Task(resolve(o)) {}
  std::string name() const override { return "induction_heads"; }
  std::string description() const override {
    return "induction_heads: after the trigger's second occurrence, predict the token that "
           "followed its first";
  }

 private:
  static TaskOptions resolve(TaskOptions o) {
    o = with_vocab(o, kDefaultVocab);
    check_common("induction_heads", o, 4, 3);
    return o;
  }
  void fill_example(int64_t* x, int64_t* y, Generator& gen) const override {
    const int64_t T = options_.seq_len, V = options_.vocab_size;
    for (int64_t t = 0; t < T; ++t) {
      x[t] = randint(gen, 2, V);
      y[t] = kIgnoreIndex;
    }
    int64_t p = randint(gen, 0, T - 2);  // p + 1 <= T - 2: the answer precedes the query
    x[p] = kSepToken;
    x[T - 1] = kSepToken;
    y[T - 1] = x[p + 1];
  }
};

// ---- induction_heads_mamba --------------------------------------------------------------
// Induction heads as the Mamba paper runs it (Gu & Dao 2023, arXiv:2312.00752, section 4.1.2
// and appendix E.1: vocabulary 16, trained at length 256, tested at 2^6 .. 2^20): the
// special token is the last id, V - 1, and every other id is data, so at V = 16 there are
// 15 possible answers (induction_heads keeps ids 0 and 1 aside).
// Layout (T tokens): data ids [0, V - 1), with SPECIAL at a random p in [0, T - 3] and at
// T - 1; the one scored target, at T - 1, is the token at p + 1.
class InductionHeadsMambaTask : public Task {
 public:
  explicit InductionHeadsMambaTask(TaskOptions o) : Task(resolve(o)) {}
  std::string name() const override { return "induction_heads_mamba"; }
  std::string description() const override {
    return "induction_heads_mamba: after the special token's second occurrence, predict the "
           "token that followed its first (Mamba's layout)";
  }

 private:
  static TaskOptions resolve(TaskOptions o) {
    o = with_vocab(o, 16);
    check_common("induction_heads_mamba", o, 3, 3);
    return o;
  }
  void fill_example(int64_t* x, int64_t* y, Generator& gen) const override {
    const int64_t T = options_.seq_len, special = options_.vocab_size - 1;
    for (int64_t t = 0; t < T; ++t) {
      x[t] = randint(gen, 0, special);
      y[t] = kIgnoreIndex;
    }
    int64_t p = randint(gen, 0, T - 2);  // p + 1 <= T - 2: the answer precedes the query
    x[p] = special;
    x[T - 1] = special;
    y[T - 1] = x[p + 1];
  }
};

// ---- passkey -----------------------------------------------------------------------------
// Measures: retrieval of a detail from anywhere in a long, otherwise predictable context —
// the standard probe of whether a model really uses (or extrapolates to) its full length.
// Introduced by Mohtashami & Jaggi 2023 ("Landmark Attention", arXiv:2305.16300).
// Deviation: tokens, not English: the paper's repeated filler sentences become a fixed
// cycle of filler ids, "The pass key is" becomes KEY and "What is the pass key?" QUERY.
// Layout (T + 1 tokens, D = passkey_digits): filler with "KEY d1..dD" inserted at a random
// place, then QUERY d1..dD at the end; the D digits after QUERY are scored.
class PasskeyTask : public Task {
 public:
  explicit PasskeyTask(TaskOptions o) : Task(resolve(o)) {}
  std::string name() const override { return "passkey"; }
  std::string description() const override {
    return cat_str("passkey: retrieve a ", options_.passkey_digits, "-digit number hidden in filler");
  }
  static constexpr int64_t kFirstFiller = kDigit0Token + 10;

 private:
  static TaskOptions resolve(TaskOptions o) {
    o = with_vocab(o, kDefaultVocab);
    check_common("passkey", o, kFirstFiller + 1, 3);
    const int64_t D = o.passkey_digits;
    TZ_CHECK(D >= 1, "passkey: passkey_digits must be >= 1, got ", D);
    TZ_CHECK(o.seq_len >= 2 * D + 1, "passkey: seq_len must be >= 2 * passkey_digits + 1 = ", 2 * D + 1,
             " (KEY + digits, QUERY + digits), got ", o.seq_len);
    return o;
  }
  void fill_example(int64_t* x, int64_t* y, Generator& gen) const override {
    const int64_t T = options_.seq_len, D = options_.passkey_digits;
    const int64_t num_filler = options_.vocab_size - kFirstFiller;
    const int64_t F = T - D;  // s[0, F) is filler with the key inside; s[F] is QUERY
    std::vector<int64_t> s(size_t(T + 1));
    for (int64_t i = 0; i < F; ++i) s[size_t(i)] = kFirstFiller + i % num_filler;
    int64_t p = randint(gen, 0, F - D);  // KEY at p, digits at p + 1 .. p + D < F
    s[size_t(p)] = kSepToken;
    s[size_t(F)] = kQueryToken;
    for (int64_t k = 0; k < D; ++k) s[size_t(p + 1 + k)] = s[size_t(F + 1 + k)] = kDigit0Token + randint(gen, 0, 10);
    shifted_targets(s, x, y, T, F, D);
  }
};

struct Entry {
  const char* name;
  std::unique_ptr<Task> (*make)(const TaskOptions&);
};
template <class T>
std::unique_ptr<Task> make(const TaskOptions& o) {
  return std::make_unique<T>(o);
}
const Entry kRegistry[] = {
    {"copy", make<CopyTask>},
    {"copy_blank", make<CopyBlankTask>},
    {"selective_copy", make<SelectiveCopyTask>},
    {"selective_copy_mamba", make<SelectiveCopyMambaTask>},
    {"mqar", make<MqarTask>},
    {"mqar_zoology", make<MqarZoologyTask>},
    {"induction_heads", make<InductionHeadsTask>},
    {"induction_heads_mamba", make<InductionHeadsMambaTask>},
    {"passkey", make<PasskeyTask>},
};

}  // namespace

Batch Task::sample(int64_t batch, Generator& gen) const {
  TZ_CHECK(batch > 0, name(), ": batch must be > 0, got ", batch);
  const int64_t T = seq_len();
  Tensor inputs = empty({batch, T}, DType::i64), targets = empty({batch, T}, DType::i64);
  int64_t* x = inputs.data<int64_t>();
  int64_t* y = targets.data<int64_t>();
  for (int64_t b = 0; b < batch; ++b) fill_example(x + b * T, y + b * T, gen);
  return {inputs, targets};
}

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Entry& e : kRegistry) v.push_back(e.name);
    return v;
  }();
  return names;
}

std::unique_ptr<Task> make_task(const std::string& name, const TaskOptions& options) {
  for (const Entry& e : kRegistry)
    if (name == e.name) return e.make(options);
  std::string guess = nearest(name, task_names());
  throw Error(cat_str("make_task: unknown task '", name, "'", guess.empty() ? "" : "; did you mean '" + guess + "'?",
                      " Valid tasks: ", join(task_names())));
}

std::vector<LengthSweepEntry> length_sweep(const std::string& name, const TaskOptions& base,
                                           const std::vector<int64_t>& factors, bool scale_counts) {
  TaskOptions resolved = make_task(name, base)->options();  // defaults fixed at length L
  std::vector<LengthSweepEntry> out;
  for (int64_t f : factors) {
    TZ_CHECK(f >= 1, "length_sweep: factors must be >= 1, got ", f);
    TaskOptions o = resolved;
    o.seq_len *= f;
    if (scale_counts) {
      o.copy_len *= f;
      o.num_pairs *= f;
      o.num_queries *= f;
    }
    out.push_back({f, make_task(name, o)});
  }
  return out;
}

double accuracy(const Tensor& predictions, const Tensor& targets) {
  TZ_CHECK(targets.dtype() == DType::i64, "accuracy: targets must be i64, got ", dtype_name(targets.dtype()));
  std::vector<int64_t> y = targets.to_vector<int64_t>(), pred;
  if (predictions.dtype() == DType::i64) {
    TZ_CHECK(predictions.shape() == targets.shape(), "accuracy: predictions ", predictions.shape(), " and targets ",
             targets.shape(), " differ in shape");
    pred = predictions.to_vector<int64_t>();
  } else {
    // Logits [..., V]: take the argmax of each row (the first one on ties).
    Shape lead(predictions.shape().begin(), predictions.shape().end() - (predictions.dim() > 0));
    TZ_CHECK(predictions.dim() == targets.dim() + 1 && lead == targets.shape(), "accuracy: logits ",
             predictions.shape(), " must be targets' shape ", targets.shape(), " plus a vocabulary dim");
    const int64_t V = predictions.size(-1);
    TZ_CHECK(V > 0, "accuracy: logits have an empty vocabulary dim");
    std::vector<double> logits = predictions.to_vector<double>();
    pred.resize(y.size());
    for (size_t i = 0; i < y.size(); ++i) {
      const double* row = logits.data() + i * size_t(V);
      pred[i] = std::max_element(row, row + V) - row;
    }
  }
  int64_t scored = 0, correct = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] == kIgnoreIndex) continue;
    ++scored;
    correct += pred[i] == y[i];
  }
  TZ_CHECK(scored > 0, "accuracy: no scored positions (every target is ", kIgnoreIndex, ")");
  return double(correct) / double(scored);
}

}  // namespace tz::data
