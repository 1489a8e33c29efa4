# CMake package config (find_package(tensorzoo CONFIG)) and a pkg-config file, both for the
# installed library: static by default, shared with BUILD_SHARED_LIBS.
include(CMakePackageConfigHelpers)

install(EXPORT tensorzooTargets NAMESPACE tensorzoo::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tensorzoo)
if(BUILD_SHARED_LIBS)
  set(TZ_SHARED ON)
else()
  set(TZ_SHARED OFF)
endif()
configure_package_config_file(cmake/tensorzooConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/tensorzooConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tensorzoo)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/tensorzooConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/tensorzooConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/tensorzooConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tensorzoo)

# pkg-config: the prefix is found from the .pc file's own place (${pcfiledir}), so a copy
# installed with `cmake --install --prefix DIR` or moved later still points at its headers.
set(TZ_PC_PREFIX "\${pcfiledir}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(TZ_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")  # a libdir outside the prefix: not relocatable
else()
  file(RELATIVE_PATH up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" up "${up}")
  string(APPEND TZ_PC_PREFIX "/${up}")
endif()
# What a program links besides -ltensorzoo. A shared library names its own dependencies; a
# static one cannot, so they go on the public lines (most builds run pkg-config without
# --static): OpenBLAS, the OpenMP runtime, and the C++ runtime for programs in C.
set(TZ_PC_RUNTIME "")
if(TZ_HAVE_OPENMP)
  foreach(name ${OpenMP_CXX_LIB_NAMES})
    string(APPEND TZ_PC_RUNTIME " -l${name}")
  endforeach()
endif()
string(APPEND TZ_PC_RUNTIME " -lstdc++ -lm")
set(TZ_PC_REQUIRES "")
if(TZ_HAVE_OPENBLAS AND OPENBLAS_FOUND)
  set(TZ_PC_REQUIRES "openblas")
elseif(TZ_HAVE_OPENBLAS)  # found without pkg-config: the libraries themselves
  foreach(lib ${BLAS_LIBRARIES})
    string(PREPEND TZ_PC_RUNTIME " ${lib}")
  endforeach()
endif()
if(NOT TZ_PC_REQUIRES)
  set(TZ_PC_REQUIRES_LINE "")
elseif(BUILD_SHARED_LIBS)
  set(TZ_PC_REQUIRES_LINE "Requires.private: ${TZ_PC_REQUIRES}")
else()
  set(TZ_PC_REQUIRES_LINE "Requires: ${TZ_PC_REQUIRES}")
endif()
if(BUILD_SHARED_LIBS)
  set(TZ_PC_LIBS "")
  set(TZ_PC_LIBS_PRIVATE_LINE "Libs.private:${TZ_PC_RUNTIME}")
else()
  set(TZ_PC_LIBS "${TZ_PC_RUNTIME}")
  set(TZ_PC_LIBS_PRIVATE_LINE "")
endif()
configure_file(cmake/tensorzoo.pc.in ${CMAKE_CURRENT_BINARY_DIR}/tensorzoo.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/tensorzoo.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
