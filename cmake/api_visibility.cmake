# The shared library exports its API and nothing else. The API is what tensorzoo.h declares:
# the library is compiled with -fvisibility=hidden, and each of its sources first reads, with
# default visibility, the part of tensorzoo.h its layer may use (a core source the core
# headers, a models source those of core, autograd, nn and models, ...), so every API
# declaration is default-visible where it is defined, and no source sees names from a layer
# above its own. Templates and inline functions of the API are exported with it.
file(STRINGS tensorzoo.h tz_api_includes REGEX "^#include \"")
set(tz_sees_core core)
set(tz_sees_autograd core autograd)
set(tz_sees_nn core autograd nn)
set(tz_sees_optim core autograd optim)
set(tz_sees_data core data)
set(tz_sees_models core autograd nn models)
set(tz_sees_all core autograd nn optim data models embed)
foreach(layer core autograd nn optim data models all)
  set(text "// Generated from tensorzoo.h by cmake/api_visibility.cmake: the API the ${layer} layer sees.\n")
  string(APPEND text "#pragma GCC visibility push(default)\n")
  foreach(line ${tz_api_includes})
    string(REGEX MATCH "\"([a-z_]+)/" unused "${line}")
    if(CMAKE_MATCH_1 IN_LIST tz_sees_${layer})
      string(APPEND text "${line}\n")
    endif()
  endforeach()
  string(APPEND text "#pragma GCC visibility pop\n")
  file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/api/${layer}.h CONTENT "${text}")
endforeach()
foreach(src ${TZ_SOURCES} ${CMAKE_CURRENT_BINARY_DIR}/catalogue_tsv.cpp)
  file(RELATIVE_PATH rel ${CMAKE_CURRENT_SOURCE_DIR} ${src})
  string(REGEX MATCH "^[a-z_]+" layer "${rel}")
  if(NOT DEFINED tz_sees_${layer})
    set(layer all)  # train/, embed/ and the generated catalogue see the whole API
  endif()
  set_property(SOURCE ${src} APPEND PROPERTY COMPILE_OPTIONS -include ${CMAKE_CURRENT_BINARY_DIR}/api/${layer}.h)
endforeach()
