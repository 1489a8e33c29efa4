// The grammar corpus: deterministic, the expected size and entropy, and — checked by an
// independent parser written from the rules in data/grammar.h — every sentence is
// grammatical, with determiner-noun and subject-verb agreement across relative clauses.
#include <doctest/doctest.h>

#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "data/grammar.h"
#include "data/text_dataset.h"

using namespace tz::data;

namespace {

enum Num { SG = 0, PL = 1, ANY = 2 };

struct Tok {
  std::string w;  // lowercased word, or one punctuation character
  bool cap = false;
};

std::vector<Tok> tokenize(const std::string& line) {
  std::vector<Tok> out;
  for (size_t i = 0; i < line.size();) {
    char c = line[i];
    if (std::isalpha(static_cast<unsigned char>(c))) {
      Tok t;
      t.cap = std::isupper(static_cast<unsigned char>(c));
      while (i < line.size() && std::isalpha(static_cast<unsigned char>(line[i])))
        t.w += char(std::tolower(static_cast<unsigned char>(line[i++])));
      out.push_back(t);
    } else if (c == ' ') {
      ++i;
    } else {
      out.push_back({std::string(1, c), false});
      ++i;
    }
  }
  return out;
}

// A recursive-descent parser for the grammar in data/grammar.h. It knows the word lists
// and the rules, but not the generator's choices: it recovers every subject's number from
// the words and checks the verb against it.
class Checker {
 public:
  int agreements = 0;  // subject-verb pairs checked
  int attractors = 0;  // ... with a noun of the other number in between
  int object_relatives = 0;
  int sentences = 0;
  std::string error;

  Checker() {
    const GrammarLexicon& lex = grammar_lexicon();
    for (const auto* list : {&lex.nouns, &lex.place_nouns})
      for (const WordPair& p : *list) {
        noun_[p.sg] = SG;
        noun_[p.pl] = PL;
      }
    for (const WordPair& p : lex.intransitive_verbs) {
      vi_[p.sg] = SG;
      vi_[p.pl] = PL;
    }
    for (const WordPair& p : lex.transitive_verbs) {
      vt_[p.sg] = SG;
      vt_[p.pl] = PL;
    }
    for (const WordPair& p : lex.copulas) {
      cop_[p.sg] = SG;
      cop_[p.pl] = PL;
    }
    adj_.insert(lex.adjectives.begin(), lex.adjectives.end());
    adv_.insert(lex.adverbs.begin(), lex.adverbs.end());
    prep_.insert(lex.prepositions.begin(), lex.prepositions.end());
    for (const auto& d : lex.singular_determiners) det_[d] = SG;
    det_["an"] = SG;
    for (const auto& d : lex.plural_determiners) det_[d] = PL;
    for (const auto& d : lex.any_determiners) det_[d] = ANY;
  }

  // Parses one line (a paragraph); false with `error` set on the first problem.
  bool paragraph(const std::string& line) {
    toks_ = tokenize(line);
    pos_ = 0;
    nouns_.clear();
    while (pos_ < toks_.size()) {
      if (!sentence()) {
        error += " in: " + line;
        return false;
      }
      ++sentences;
    }
    return true;
  }

 private:
  // ---- token helpers ------------------------------------------------------------------------
  const std::string& peek(size_t k = 0) const {
    static const std::string end = "<end>";
    return pos_ + k < toks_.size() ? toks_[pos_ + k].w : end;
  }
  bool fail(const std::string& msg) {
    if (error.empty()) error = msg + " at token " + std::to_string(pos_) + " '" + peek() + "'";
    return false;
  }
  // Consumes a word, checking capitalisation: only a sentence's or quote's first word.
  bool take_word() {
    if (toks_[pos_].cap != cap_next_) return fail(cap_next_ ? "expected a capital" : "unexpected capital");
    cap_next_ = false;
    ++pos_;
    return true;
  }
  bool expect(const std::string& w) {
    if (peek() != w) return fail("expected '" + w + "'");
    if (std::isalpha(static_cast<unsigned char>(w[0]))) return take_word();
    ++pos_;
    if (w == "\"" && quote_open_ == false) {
      quote_open_ = true;
      cap_next_ = true;
    } else if (w == "\"")
      quote_open_ = false;
    return true;
  }
  template <class M>
  static bool has(const M& m, const std::string& w) {
    return m.count(w) > 0;
  }
  bool agree(Num subject, Num verb, size_t subject_pos) {
    ++agreements;
    if (subject != verb) return fail("subject-verb agreement");
    for (auto [p, n] : nouns_)
      if (p > subject_pos && p < pos_ && n != subject) {
        ++attractors;
        break;
      }
    return true;
  }

  // ---- rules -----------------------------------------------------------------------------
  bool sentence() {
    cap_next_ = true;
    quote_open_ = false;
    const std::string& w = peek();
    if (w == "\"") {  // '"' Decl ',"' said NP '.'  |  '"' Question '?"' asked NP '.'
      expect("\"");
      bool ask = is_question_start(peek());
      if (!(ask ? question() : decl())) return false;
      if (!expect(ask ? "?" : ",") || !expect("\"") || !expect(ask ? "asked" : "said")) return false;
      Num n;
      size_t h;
      return np(n, h) && expect(".");
    }
    if (is_question_start(w)) return question() && expect("?");
    if (w == "when") return decl() && end_decl();
    Num n;
    size_t head;
    if (!np(n, head)) return false;
    if (peek() == "said" || peek() == "asked") {  // NP said, '"' Decl '."'
      bool ask = peek() == "asked";
      if (!expect(peek()) || !expect(",") || !expect("\"")) return false;
      if (!(ask ? question() : decl())) return false;
      return expect(ask ? "?" : ".") && expect("\"");
    }
    return vp(n, head, true) && decl_rest() && end_decl();
  }
  bool end_decl() {
    if (peek() == "!") return expect("!");
    return expect(".");
  }
  static bool is_question_start(const std::string& w) {
    return w == "does" || w == "do" || w == "is" || w == "are" || w == "was" || w == "were";
  }

  // Decl := Clause [conj Clause] | when Clause , Clause
  bool decl() {
    if (peek() == "when") return expect("when") && clause() && expect(",") && clause();
    return clause() && decl_rest();
  }
  bool decl_rest() {
    if (peek() == "," && (peek(1) == "and" || peek(1) == "but" || peek(1) == "so"))
      return expect(",") && expect(peek()) && clause();
    if (peek() == "because") return expect("because") && clause();
    return true;
  }
  bool clause() {
    Num n;
    size_t head;
    return np(n, head) && vp(n, head, true);
  }

  // Question := does NP[sg] VPbase | do NP[pl] VPbase | Cop NP Adj | Cop NP0 PP
  bool question() {
    const std::string w = peek();
    if (!take_word()) return false;
    Num n;
    size_t head;
    if (has(cop_, w)) {
      // Try "Cop NP Adj"; if that fails, go back and read "Cop NP0 PP" (NP0: no modifier).
      size_t pos = pos_;
      int agreements0 = agreements, attractors0 = attractors, objrel0 = object_relatives;
      size_t nouns0 = nouns_.size();
      if (np(n, head) && has(adj_, peek())) return agree(n, cop_[w], head) && take_word();
      pos_ = pos;
      agreements = agreements0, attractors = attractors0, object_relatives = objrel0;
      nouns_.resize(nouns0);
      error.clear();
      return np(n, head, /*modifiers=*/false) && agree(n, cop_[w], head) && pp();
    }
    if (!np(n, head)) return false;
    if (w == "does" || w == "do") {
      if (!agree(n, w == "does" ? SG : PL, head)) return false;
      // After do/does the verb is the base form (= the plural form here).
      if (has(vi_, peek()) && vi_[peek()] == PL) return take_word();
      if (has(vt_, peek()) && vt_[peek()] == PL) {
        Num m;
        size_t h;
        return take_word() && np(m, h);
      }
      return fail("expected a base-form verb after do/does");
    }
    return fail("expected a question");
  }

  // VP[n] := Adv? (Vi | Vt NP) | Cop Pred
  bool vp(Num n, size_t head, bool allow_adverb) {
    bool adverb = false;
    if (allow_adverb && has(adv_, peek())) {
      adverb = true;
      if (!take_word()) return false;
    }
    const std::string w = peek();
    if (has(vi_, w)) return agree(n, vi_[w], head) && take_word();
    if (has(vt_, w)) {
      Num m;
      size_t h;
      return agree(n, vt_[w], head) && take_word() && np(m, h);
    }
    if (has(cop_, w) && !adverb) return agree(n, cop_[w], head) && take_word() && pred();
    return fail("expected a verb");
  }
  bool pred() {
    if (has(adj_, peek())) return take_word();
    return pp();
  }
  bool pp() {
    if (!has(prep_, peek())) return fail("expected a preposition");
    Num m;
    size_t h;
    return take_word() && np(m, h);
  }

  // NP := Det Adj{0..2} Noun (PP | RC)?; returns the noun's number and position.
  bool np(Num& n, size_t& head, bool modifiers = true) {
    const std::string det = peek();
    if (!has(det_, det)) return fail("expected a determiner");
    if (!take_word()) return false;
    int adjectives = 0;
    while (has(adj_, peek())) {
      if (++adjectives > 2) return fail("more than two adjectives");
      if (!take_word()) return false;
    }
    if (!has(noun_, peek())) return fail("expected a noun");
    if (det == "a" || det == "an") {  // "an" exactly before a vowel
      char first = toks_[pos_ - size_t(adjectives)].w[0];
      bool vowel = std::string("aeiou").find(first) != std::string::npos;
      if ((det == "an") != vowel) return fail("a/an");
    }
    n = noun_[peek()];
    head = pos_;
    Num d = det_[det];
    if (d != ANY && d != n) return fail("determiner-noun agreement");
    nouns_.push_back({pos_, n});
    if (!take_word()) return false;
    if (!modifiers) return true;
    if (has(prep_, peek())) return pp();
    if (peek() == "that") {
      if (!take_word()) return false;
      if (has(det_, peek())) {  // object relative: that NP[m] Vt[m]
        ++object_relatives;
        Num m;
        size_t h;
        if (!np(m, h)) return false;
        if (!has(vt_, peek())) return fail("expected a transitive verb in an object relative");
        return agree(m, vt_[peek()], h) && take_word();
      }
      return vp(n, head, false);  // subject relative: that VP[n]
    }
    return true;
  }

  std::map<std::string, Num> noun_, vi_, vt_, cop_, det_;
  std::set<std::string> adj_, adv_, prep_;
  std::vector<Tok> toks_;
  std::vector<std::pair<size_t, Num>> nouns_;
  size_t pos_ = 0;
  bool cap_next_ = false, quote_open_ = false;
};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

}  // namespace

TEST_CASE("grammar: deterministic for a seed and sized in ASCII ending with a newline") {
  std::string a = grammar_text(100000, 1), b = grammar_text(100000, 1), c = grammar_text(100000, 2);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a.size() <= 100000);
  CHECK(a.size() > 100000 - 1000);  // short by less than one sentence
  CHECK(a.back() == '\n');
  bool ascii = true;
  for (char ch : a) ascii = ascii && static_cast<unsigned char>(ch) < 128;
  CHECK(ascii);
  CHECK(grammar_text(100000, 1).substr(0, 5000) == grammar_text(5000 + 2000, 1).substr(0, 5000));
  CHECK(grammar_text(0, 1).empty());
}

TEST_CASE("grammar: the checker accepts good sentences and rejects agreement errors") {
  Checker ok;
  CHECK_MESSAGE(ok.paragraph("The dogs that the cat sees run. An old owl sleeps."), ok.error);
  CHECK_MESSAGE(ok.paragraph("Does the dog near the rivers run? \"The men are happy,\" said a boy."), ok.error);
  CHECK_MESSAGE(ok.paragraph("The girl asked, \"Were the kings that know the cat brave?\""), ok.error);
  for (const char* bad : {"The dogs that the cat sees runs.",   // matrix verb
                          "The dogs that the cat see run.",     // relative-clause verb
                          "The dog that chase the cats runs.",  // subject relative
                          "A dogs run.", "An dog runs.", "A old dog runs.", "Does the dogs run?", "Do the dog runs?",
                          "the dog runs.", "The Dog runs.", "The dogs is happy."}) {
    Checker c;
    CHECK_MESSAGE(!c.paragraph(bad), "accepted: ", bad);
  }
}

TEST_CASE("grammar: every generated sentence parses and agrees across nested clauses") {
  std::string text = grammar_text(300000, 7);
  Checker c;
  for (const std::string& line : lines(text)) REQUIRE_MESSAGE(c.paragraph(line), c.error);
  MESSAGE("sentences ", c.sentences, ", agreements ", c.agreements, ", with an attractor ", c.attractors,
          ", object relatives ", c.object_relatives);
  CHECK(c.sentences > 3000);
  CHECK(c.agreements > 5000);
  CHECK(c.attractors > 500);        // a noun of the other number between subject and verb
  CHECK(c.object_relatives > 500);  // "the dogs that the cat sees run"
}

TEST_CASE("grammar: entropy in the expected range and the text predictable from context") {
  std::string text = grammar_text(1 << 20, 3);
  TextDataset ds = TextDataset::from_string(text);
  double h1 = ds.unigram_entropy_bits();
  MESSAGE("unigram entropy ", h1, " bits per byte");
  CHECK(h1 > 4.0);
  CHECK(h1 < 4.4);
  // Conditional entropy of a byte given the 4 before it (empirical, on the same text):
  // far below the unigram entropy, so there is structure for a model to learn.
  std::map<uint64_t, std::map<char, int>> counts;
  for (size_t i = 4; i < text.size(); ++i) {
    uint64_t ctx = 0;
    for (size_t k = i - 4; k < i; ++k) ctx = ctx * 256 + static_cast<unsigned char>(text[k]);
    ++counts[ctx][text[i]];
  }
  double h4 = 0, n = double(text.size() - 4);
  for (auto& [ctx, next] : counts) {
    double total = 0;
    for (auto& [ch, k] : next) total += k;
    for (auto& [ch, k] : next) h4 -= k / n * std::log2(k / total);
  }
  MESSAGE("entropy given 4 bytes of context ", h4, " bits per byte");
  CHECK(h4 < 0.6 * h1);
}
