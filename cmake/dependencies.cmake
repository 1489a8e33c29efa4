# Finds the optional dependencies and prints one summary line of what was found.
# nlohmann-json is private to the library (no json type appears in a public header); fmt is
# used by the command-line tool only.

find_package(fmt CONFIG QUIET)
find_package(nlohmann_json 3 CONFIG QUIET)

set(TZ_HAVE_OPENMP OFF)
if(TZ_USE_OPENMP)
  find_package(OpenMP COMPONENTS CXX QUIET)
  if(OpenMP_CXX_FOUND)
    set(TZ_HAVE_OPENMP ON)
  endif()
endif()

set(TZ_HAVE_OPENBLAS OFF)
set(TZ_BLAS_VIA "none")
if(TZ_USE_OPENBLAS)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(OPENBLAS QUIET IMPORTED_TARGET openblas)
  endif()
  if(OPENBLAS_FOUND)
    set(TZ_HAVE_OPENBLAS ON)
    set(TZ_BLAS_VIA "pkg-config openblas ${OPENBLAS_VERSION}")
  else()
    set(BLA_VENDOR OpenBLAS)
    find_package(BLAS QUIET)
    if(BLAS_FOUND)
      find_path(TZ_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas openblas-openmp)
      if(TZ_CBLAS_INCLUDE)
        set(TZ_HAVE_OPENBLAS ON)
        set(TZ_BLAS_VIA "FindBLAS")
      endif()
    endif()
  endif()
endif()

set(TZ_HAVE_MPI OFF)
set(TZ_MPI_VIA "")
if(TZ_USE_MPI)
  # MPI's C interface from C++; the deprecated C++ bindings (libmpi_cxx) are left out.
  set(MPI_CXX_SKIP_MPICXX ON)
  find_package(MPI COMPONENTS CXX QUIET)
  if(MPI_CXX_FOUND)
    set(TZ_HAVE_MPI ON)
    set(TZ_MPI_VIA " (MPI ${MPI_CXX_VERSION}, ${MPIEXEC_EXECUTABLE})")
  endif()
endif()

set(TZ_ISA "portable (SIMD chosen at run time)")
if(TZ_NATIVE)
  set(TZ_ISA "-march=native")
endif()

message(STATUS "tensorzoo: OpenBLAS ${TZ_HAVE_OPENBLAS} (${TZ_BLAS_VIA}), OpenMP ${TZ_HAVE_OPENMP}, "
               "MPI ${TZ_HAVE_MPI}${TZ_MPI_VIA}, "
               "ISA ${TZ_ISA}, sanitizers ${TZ_SANITIZE}, thread sanitizer ${TZ_TSAN}, fuzzing ${TZ_FUZZ}, fmt ${fmt_FOUND}, json ${nlohmann_json_FOUND}, "
               "build ${CMAKE_BUILD_TYPE}")

if(NOT fmt_FOUND OR NOT nlohmann_json_FOUND)
  message(FATAL_ERROR "tensorzoo needs libfmt-dev and nlohmann-json3-dev: "
                      "apt-get install libfmt-dev nlohmann-json3-dev")
endif()

# `objects`: the object library (compile flags); `libraries`: the archives and shared libraries
# made from it (what they link, and what programs linking them need).
function(tz_link_dependencies objects libraries)
  # nlohmann-json is header-only and private: no public header includes it, so it is a build
  # requirement only, and the installed package does not ask for it. fmt is the tool's alone.
  target_link_libraries(${objects} PRIVATE $<BUILD_INTERFACE:nlohmann_json::nlohmann_json>)
  if(TZ_HAVE_OPENMP)
    # Only the library's sources compile with OpenMP (no public header uses it): a program
    # that links the library gets the runtime, not -fopenmp.
    target_link_libraries(${objects} PRIVATE OpenMP::OpenMP_CXX)
    target_compile_definitions(${objects} PRIVATE TZ_HAVE_OPENMP=1)
  endif()
  if(TZ_HAVE_OPENBLAS)
    target_compile_definitions(${objects} PRIVATE TZ_HAVE_OPENBLAS=1)
    if(OPENBLAS_FOUND)
      target_link_libraries(${objects} PRIVATE PkgConfig::OPENBLAS)
    else()
      target_include_directories(${objects} PRIVATE ${TZ_CBLAS_INCLUDE})
    endif()
  endif()
  if(TZ_NATIVE)
    target_compile_options(${objects} PRIVATE -march=native)
  endif()
  set(compile_options "")
  set(link_options "")
  if(TZ_SANITIZE)
    list(APPEND compile_options -fsanitize=address,undefined -fno-omit-frame-pointer)
    list(APPEND link_options -fsanitize=address,undefined)
  endif()
  if(TZ_FUZZ)  # coverage for libFuzzer in the listed sources; the harnesses link its driver
    list(APPEND compile_options -fsanitize=fuzzer-no-link
      -fsanitize-coverage-allowlist=${PROJECT_SOURCE_DIR}/tests/fuzz/coverage_allowlist.txt)
  endif()
  if(TZ_TSAN)
    list(APPEND compile_options -fsanitize=thread -fno-omit-frame-pointer)
    list(APPEND link_options -fsanitize=thread)
  endif()
  target_compile_options(${objects} PRIVATE ${compile_options})
  foreach(lib ${libraries})
    if(TZ_HAVE_OPENMP)
      target_link_libraries(${lib} PRIVATE OpenMP::OpenMP_CXX)
    endif()
    if(TZ_HAVE_OPENBLAS AND OPENBLAS_FOUND)
      target_link_libraries(${lib} PRIVATE PkgConfig::OPENBLAS)
    elseif(TZ_HAVE_OPENBLAS)
      target_link_libraries(${lib} PRIVATE ${BLAS_LIBRARIES})
    endif()
    # The sanitizers' flags reach every program built on the library in this tree.
    target_compile_options(${lib} PUBLIC ${compile_options})
    target_link_options(${lib} PUBLIC ${link_options})
  endforeach()
endfunction()
