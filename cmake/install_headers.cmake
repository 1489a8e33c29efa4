# Installs the public headers under <include>/tensorzoo/ (run by `cmake --install`).
#
# In the source tree the headers include each other by their path from the root
# ("core/tensor.h"). Installed, that path is prefixed with tensorzoo/ ("tensorzoo/core/tensor.h"),
# so a program compiles with -I<prefix>/include alone and writes #include <tensorzoo/...>:
# nothing of ours is found under a bare core/, data/ or nn/ that the program may have too.
set(layers core autograd nn models optim data train embed)
set(dest "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/${TZ_INCLUDE_DIR}/tensorzoo")
if(IS_ABSOLUTE "${TZ_INCLUDE_DIR}")
  set(dest "$ENV{DESTDIR}${TZ_INCLUDE_DIR}/tensorzoo")
endif()
set(headers tensorzoo.h tensorzoo_c.h)
foreach(layer ${layers})
  file(GLOB_RECURSE found RELATIVE "${TZ_SOURCE_DIR}" "${TZ_SOURCE_DIR}/${layer}/*.h" "${TZ_SOURCE_DIR}/${layer}/*.def")
  list(APPEND headers ${found})
endforeach()
list(REMOVE_ITEM headers core/mpi_comm.h)  # tensorzoo_mpi's, which is not installed
list(JOIN layers "|" alternatives)
foreach(header ${headers})
  file(READ "${TZ_SOURCE_DIR}/${header}" text)
  string(REGEX REPLACE "#include \"(${alternatives})/" "#include \"tensorzoo/\\1/" text "${text}")
  set(out "${dest}/${header}")
  message(STATUS "Installing: ${out}")
  file(WRITE "${out}" "${text}")
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${out}")
endforeach()
