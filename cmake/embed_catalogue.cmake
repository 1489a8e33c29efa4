# Writes a C++ file holding docs/catalogue.tsv as a string constant (run at build time).
file(READ ${INPUT} content)
# Split into chunks of whole lines (at most about 8000 bytes each): long raw string literals
# are fine for GCC but chunks keep it portable, and a cut inside a UTF-8 character would
# leave an invalid literal.
set(out "// Generated from docs/catalogue.tsv; do not edit.\nnamespace tz::nn {\nextern const char* const kCatalogueTsv;\nconst char* const kCatalogueTsv =\n")
string(LENGTH "${content}" n)
while(n GREATER 0)
  string(SUBSTRING "${content}" 0 8000 chunk)
  string(FIND "${chunk}" "\n" cut REVERSE)
  if(n GREATER 8000 AND cut GREATER_EQUAL 0)
    math(EXPR cut "${cut} + 1")
    string(SUBSTRING "${content}" 0 ${cut} chunk)
  endif()
  string(LENGTH "${chunk}" used)
  string(SUBSTRING "${content}" ${used} -1 content)
  string(APPEND out "R\"tsv(${chunk})tsv\"\n")
  math(EXPR n "${n} - ${used}")
endwhile()
string(APPEND out ";\n}\n")
file(WRITE ${OUTPUT} "${out}")
