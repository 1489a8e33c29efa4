// The grammar of grammar.h, written as one recursive generator: each rule is a function
// that appends its words to the text. Numbers (singular/plural) are passed down from the
// subject to its verb, which is how agreement survives any clause in between.
#include "data/grammar.h"

#include "core/error.h"
#include "core/random.h"

namespace tz::data {

const GrammarLexicon& grammar_lexicon() {
  static const GrammarLexicon lex{
      .nouns = {{"dog", "dogs"},       {"cat", "cats"},         {"bird", "birds"},     {"fox", "foxes"},
                {"wolf", "wolves"},    {"horse", "horses"},     {"owl", "owls"},       {"eagle", "eagles"},
                {"child", "children"}, {"girl", "girls"},       {"boy", "boys"},       {"man", "men"},
                {"woman", "women"},    {"teacher", "teachers"}, {"farmer", "farmers"}, {"king", "kings"},
                {"queen", "queens"},   {"sailor", "sailors"},   {"baker", "bakers"},   {"artist", "artists"},
                {"robot", "robots"},   {"student", "students"}},
      .place_nouns = {{"house", "houses"},
                      {"river", "rivers"},
                      {"garden", "gardens"},
                      {"tree", "trees"},
                      {"hill", "hills"},
                      {"forest", "forests"},
                      {"city", "cities"},
                      {"bridge", "bridges"},
                      {"market", "markets"},
                      {"window", "windows"},
                      {"table", "tables"},
                      {"road", "roads"}},
      .intransitive_verbs = {{"runs", "run"},
                             {"sleeps", "sleep"},
                             {"sings", "sing"},
                             {"laughs", "laugh"},
                             {"waits", "wait"},
                             {"dances", "dance"},
                             {"smiles", "smile"},
                             {"swims", "swim"},
                             {"cries", "cry"},
                             {"jumps", "jump"}},
      .transitive_verbs = {{"sees", "see"},
                           {"likes", "like"},
                           {"chases", "chase"},
                           {"follows", "follow"},
                           {"helps", "help"},
                           {"finds", "find"},
                           {"watches", "watch"},
                           {"knows", "know"},
                           {"teaches", "teach"},
                           {"carries", "carry"},
                           {"visits", "visit"},
                           {"calls", "call"}},
      .copulas = {{"is", "are"}, {"was", "were"}},
      .adjectives = {"big", "small", "old", "young", "happy", "sad", "red", "quiet", "clever", "tired", "brave",
                     "angry", "kind", "hungry", "eager"},
      .adverbs = {"often", "always", "never", "sometimes", "rarely"},
      .prepositions = {"near", "behind", "under", "with", "beside", "in", "on"},
      .singular_determiners = {"a", "this", "every", "each"},
      .plural_determiners = {"these", "some", "many", "two", "three", "those"},
      .any_determiners = {"the"},
  };
  return lex;
}

namespace {

enum Number { kSg = 0, kPl = 1 };

class GrammarWriter {
 public:
  GrammarWriter(std::string& out, Generator& gen) : out_(out), gen_(gen), lex_(grammar_lexicon()) {}

  void paragraph_start() { need_space_ = false; }
  void paragraph_end() {
    out_ += '\n';
    need_space_ = false;
  }

  // Sentence := Decl ("." | "!") | Question "?" | one of four dialogue forms.
  void sentence() {
    cap_next_ = true;
    double r = uniform();
    if (r < 0.74) {
      decl();
      punct(chance(0.06) ? '!' : '.');
    } else if (r < 0.84) {
      question();
      punct('?');
    } else {
      bool ask = chance(0.3);
      if (chance(0.5)) {  // "The dogs run," said the girl.
        open_quote();
        if (ask)
          question();
        else
          decl();
        punct(ask ? '?' : ',');
        close_quote();
        word(ask ? "asked" : "said");
        np(random_number(), 1, /*subject=*/true);
        punct('.');
      } else {  // The girl said, "The dogs run."
        np(random_number(), 1, true);
        word(ask ? "asked" : "said");
        punct(',');
        open_quote();
        if (ask)
          question();
        else
          decl();
        punct(ask ? '?' : '.');
        close_quote();
      }
    }
  }

 private:
  static constexpr int kMaxDepth = 2;  // nesting of NP modifiers (PP, relative clause)

  // ---- rules ------------------------------------------------------------------------------
  void decl() {
    double r = uniform();
    if (r < 0.72) {
      clause();
    } else if (r < 0.9) {
      clause();
      static const char* conj[] = {"and", "but", "so", "because"};
      const char* c = conj[gen_.randint(0, 4)];
      if (c[0] != 'b' || c[1] != 'e') punct(',');  // no comma before "because"
      word(c);
      clause();
    } else {
      word("when");
      clause();
      punct(',');
      clause();
    }
  }

  void question() {
    Number n = random_number();
    if (chance(0.55)) {  // does the dog run / do the dogs run
      word(n == kSg ? "does" : "do");
      np(n, 0, /*subject=*/true);
      if (chance(0.45)) {
        word(pick(lex_.intransitive_verbs).pl);
      } else {
        word(pick(lex_.transitive_verbs).pl);
        np(random_number(), 1);
      }
    } else {  // is the dog happy / were the dogs near the river
      const WordPair& cop = pick(lex_.copulas);
      word(n == kSg ? cop.sg : cop.pl);
      if (chance(0.6)) {
        np(n, 0, true);
        word(pick(lex_.adjectives));
      } else {
        // "Are the dogs near the river?": the subject takes no modifier here, else a PP
        // predicate could also be read as the subject's modifier (two parses).
        np(n, kMaxDepth, true);
        pp(kMaxDepth);
      }
    }
  }

  // Clause := NP[n] Adverb? VP[n]
  void clause() {
    Number n = random_number();
    np(n, 0, true);
    vp(n, 0, /*allow_adverb=*/true);
  }

  // VP[n] := Vi[n] | Vt[n] NP | Cop[n] Pred
  void vp(Number n, int depth, bool allow_adverb) {
    double r = uniform();
    if (r < 0.7 && allow_adverb && chance(0.15)) word(pick(lex_.adverbs));
    if (r < 0.32) {
      word(form(pick(lex_.intransitive_verbs), n));
    } else if (r < 0.7) {
      word(form(pick(lex_.transitive_verbs), n));
      np(random_number(), depth + 1);
    } else {
      word(form(pick(lex_.copulas), n));
      predicate(depth + 1);
    }
  }

  // Pred := Adj | PP
  void predicate(int depth) {
    if (chance(0.6))
      word(pick(lex_.adjectives));
    else
      pp(depth);
  }

  void pp(int depth) {
    word(pick(lex_.prepositions));
    np(random_number(), depth);
  }

  // NP[n] := Det[n] Adj{0..2} Noun[n] (PP | RC[n])?   with at most kMaxDepth nested levels.
  void np(Number n, int depth, bool subject = false) {
    // Choose the words first: "a" becomes "an" before a vowel, so the determiner depends
    // on the next word.
    int n_adj = 0;
    double r = uniform();
    if (r < 0.3)
      n_adj = 1;
    else if (r < 0.38)
      n_adj = 2;
    const std::string* adj[2] = {&pick(lex_.adjectives), &pick(lex_.adjectives)};
    if (n_adj == 2 && adj[0] == adj[1]) n_adj = 1;  // no "the old old dog"
    const auto& nouns = subject || chance(0.7) ? lex_.nouns : lex_.place_nouns;
    const std::string& noun = form(pick(nouns), n);
    const std::string& next = n_adj > 0 ? *adj[0] : noun;

    double d = uniform();
    if (d < 0.55) {
      word("the");
    } else if (n == kSg) {
      const std::string& det = pick(lex_.singular_determiners);
      word(det == "a" && is_vowel(next[0]) ? "an" : det);
    } else {
      word(pick(lex_.plural_determiners));
    }
    for (int i = 0; i < n_adj; ++i) word(*adj[i]);
    word(noun);

    if (depth >= kMaxDepth) return;
    double m = uniform(), scale = depth == 0 ? 1.0 : 0.6;
    if (m < 0.22 * scale) {
      pp(depth + 1);
    } else if (m < 0.22 * scale + 0.25 * scale) {
      word("that");
      if (chance(0.5)) {  // subject relative: "the dog that chases the cats"
        vp(n, depth + 1, false);
      } else {  // object relative: "the dogs that the cat sees"
        Number m2 = random_number();
        np(m2, depth + 1, true);
        word(form(pick(lex_.transitive_verbs), m2));
      }
    }
  }

  // ---- words and punctuation ----------------------------------------------------------------
  void word(const std::string& w) {
    if (need_space_) out_ += ' ';
    size_t at = out_.size();
    out_ += w;
    if (cap_next_) {
      out_[at] = char(out_[at] - 'a' + 'A');
      cap_next_ = false;
    }
    need_space_ = true;
  }
  void punct(char c) {
    out_ += c;
    need_space_ = true;
  }
  void open_quote() {
    if (need_space_) out_ += ' ';
    out_ += '"';
    need_space_ = false;
    cap_next_ = true;
  }
  void close_quote() {
    out_ += '"';
    need_space_ = true;
  }

  // ---- randomness -------------------------------------------------------------------------
  double uniform() { return gen_.uniform(); }
  bool chance(double p) { return gen_.uniform() < p; }
  Number random_number() { return chance(0.5) ? kSg : kPl; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[size_t(gen_.randint(0, int64_t(v.size())))];
  }
  static const std::string& form(const WordPair& w, Number n) { return n == kSg ? w.sg : w.pl; }
  static bool is_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

  std::string& out_;
  Generator& gen_;
  const GrammarLexicon& lex_;
  bool need_space_ = false;
  bool cap_next_ = false;
};

}  // namespace

std::string grammar_text(int64_t num_bytes, uint64_t seed) {
  TZ_CHECK(num_bytes >= 0, "grammar_text: num_bytes must be >= 0, got ", num_bytes);
  Generator gen(seed);
  std::string out;
  out.reserve(size_t(num_bytes) + 1024);
  GrammarWriter writer(out, gen);
  const size_t limit = size_t(num_bytes);
  while (true) {
    writer.paragraph_start();
    int64_t sentences = gen.randint(3, 8);
    for (int64_t s = 0; s < sentences; ++s) {
      size_t before = out.size();
      writer.sentence();
      // Keep room for the closing newline; drop the sentence that would not fit.
      if (out.size() + 1 > limit) {
        out.resize(before);
        if (!out.empty() && out.back() != '\n') out += '\n';
        return out;
      }
    }
    writer.paragraph_end();
  }
}

}  // namespace tz::data
