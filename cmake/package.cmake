# CMake package config (find_package(tensorzoo CONFIG)) and a pkg-config file.
include(CMakePackageConfigHelpers)

install(EXPORT tensorzooTargets NAMESPACE tensorzoo::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tensorzoo)
configure_package_config_file(cmake/tensorzooConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/tensorzooConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tensorzoo)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/tensorzooConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/tensorzooConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/tensorzooConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tensorzoo)

set(TZ_PC_REQUIRES_PRIVATE "fmt")
set(TZ_PC_LIBS_PRIVATE "")
if(TZ_HAVE_OPENBLAS)
  string(APPEND TZ_PC_REQUIRES_PRIVATE " openblas")
endif()
if(TZ_HAVE_OPENMP)  # the runtime to link; a program compiles without -fopenmp
  set(TZ_PC_LIBS_PRIVATE "-fopenmp")
endif()
configure_file(cmake/tensorzoo.pc.in ${CMAKE_CURRENT_BINARY_DIR}/tensorzoo.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/tensorzoo.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
