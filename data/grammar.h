// A built-in English-like corpus that needs no download: text generated from a small
// probabilistic grammar, deterministic for a seed.
//
// The text has structure a language model must learn to go below its unigram entropy
// (~4.2 bits per byte): spelling of a modest vocabulary, determiner-noun agreement (a dog,
// an owl, these dogs), subject-verb number agreement (the dog runs / the dogs run) that
// holds across prepositional phrases and nested relative clauses ("the dogs that the cat
// near the river sees run"), questions with do/does + base verb, coordinated clauses,
// quoted dialogue, punctuation and capitalisation. The grammar:
//
//   Paragraph := Sentence{3..7} "\n"
//   Sentence  := Decl ("." | "!") | Question "?"
//              | '"' Decl ',"' "said" NP "."       | NP "said," '"' Decl '."'
//              | '"' Question '?"' "asked" NP "."  | NP "asked," '"' Question '?"'
//   Decl      := Clause | Clause (", and" | ", but" | ", so" | "because") Clause
//              | "when" Clause "," Clause
//   Question  := "does" NP[sg] VPbase | "do" NP[pl] VPbase
//              | Cop[n] NP[n] Adj | Cop[n] NP0[n] PP  (NP0: an NP with no modifier, so that
//                                                   the PP has one reading)
//   Clause    := NP[n] Adverb? VP[n]
//   NP[n]     := Det[n] Adj{0..2} Noun[n] (PP | RC[n])?     (modifiers nest 2 deep at most)
//   PP        := Prep NP[any]
//   RC[n]     := "that" VP[n]                 (subject relative: the verb agrees with n)
//              | "that" NP[m] Vt[m]           (object relative: the verb agrees with m)
//   VP[n]     := Vi[n] | Vt[n] NP[any] | Cop[n] Pred        Pred := Adj | PP
//   VPbase    := Vi[base] | Vt[base] NP[any]
//
// An NP takes at most one modifier, so every sentence has a single parse (the test parses
// the text with these rules and checks every agreement).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tz::data {

// Generates whole paragraphs of grammar text: at most num_bytes bytes (less by under one
// sentence), ending with a newline; ASCII only. The same seed gives the same text.
std::string grammar_text(int64_t num_bytes, uint64_t seed);

// The word lists of the grammar (for tests and for readers): each pair is {singular,
// plural}; for verbs, {third person singular, base/plural form}.
struct WordPair {
  std::string sg, pl;
};
struct GrammarLexicon {
  std::vector<WordPair> nouns;               // animate: subjects, objects, PP objects
  std::vector<WordPair> place_nouns;         // objects and PP objects only
  std::vector<WordPair> intransitive_verbs;  // runs / run
  std::vector<WordPair> transitive_verbs;    // sees / see
  std::vector<WordPair> copulas;             // is / are, was / were
  std::vector<std::string> adjectives;
  std::vector<std::string> adverbs;
  std::vector<std::string> prepositions;
  std::vector<std::string> singular_determiners;  // "a" stands for a/an
  std::vector<std::string> plural_determiners;
  std::vector<std::string> any_determiners;  // "the"
};
const GrammarLexicon& grammar_lexicon();

}  // namespace tz::data
