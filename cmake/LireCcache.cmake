# Use ccache when it is installed. Precompiled headers need relaxed checks
# (pch_defines, time_macros) or ccache refuses to cache their users.
find_program(LIRE_CCACHE ccache)
if(LIRE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "CCACHE_MAXSIZE=5G"
      ${LIRE_CCACHE})
  message(STATUS "lire: compiling through ccache (${LIRE_CCACHE})")
endif()
