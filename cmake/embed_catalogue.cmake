# Writes a C++ file holding docs/catalogue.tsv as a string constant (run at build time).
file(READ ${INPUT} content)
# Split into chunks: long raw string literals are fine for GCC but chunks keep it portable.
string(LENGTH "${content}" n)
set(out "// Generated from docs/catalogue.tsv; do not edit.\nnamespace tz::nn {\nextern const char* const kCatalogueTsv;\nconst char* const kCatalogueTsv =\n")
set(i 0)
while(i LESS n)
  string(SUBSTRING "${content}" ${i} 8000 chunk)
  string(APPEND out "R\"tsv(${chunk})tsv\"\n")
  math(EXPR i "${i} + 8000")
endwhile()
string(APPEND out ";\n}\n")
file(WRITE ${OUTPUT} "${out}")
