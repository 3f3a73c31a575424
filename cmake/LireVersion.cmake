# Generates lire/version.h with the project version and, when known, the git commit.
set(LIRE_GIT_COMMIT "unknown")
find_program(LIRE_GIT git)
if(LIRE_GIT AND EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/.git")
  execute_process(COMMAND ${LIRE_GIT} rev-parse --short=12 HEAD
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
    OUTPUT_VARIABLE _commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
  if(_rc EQUAL 0 AND _commit)
    set(LIRE_GIT_COMMIT "${_commit}")
  endif()
endif()
set(LIRE_GENERATED_INCLUDE_DIR ${CMAKE_CURRENT_BINARY_DIR}/generated/include)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/version.h.in
               ${LIRE_GENERATED_INCLUDE_DIR}/lire/version.h @ONLY)
