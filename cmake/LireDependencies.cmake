# Every dependency is found with find_package or pkg-config; a missing one
# stops configuration with the Debian package that provides it.
include(FindPackageHandleStandardArgs)

macro(lire_require package debian_package)
  find_package(${package} ${ARGN} QUIET)
  if(NOT ${package}_FOUND)
    message(FATAL_ERROR
      "lire needs ${package}, which was not found. On Debian 12: "
      "apt-get install ${debian_package} (or run scripts/setup.sh).")
  endif()
endmacro()

lire_require(nlohmann_json nlohmann-json3-dev)
lire_require(yaml-cpp libyaml-cpp-dev)
find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "lire needs pkg-config to find sentencepiece: apt-get install pkg-config")
endif()
pkg_check_modules(SENTENCEPIECE QUIET IMPORTED_TARGET sentencepiece)
if(NOT SENTENCEPIECE_FOUND)
  message(FATAL_ERROR
    "lire needs sentencepiece, which was not found. On Debian 12: apt-get install libsentencepiece-dev")
endif()

if(LIRE_WITH_TORCH)
  find_package(Torch QUIET)
  if(NOT Torch_FOUND AND NOT TORCH_FOUND)
    message(FATAL_ERROR
      "lire needs LibTorch, which was not found. On Debian 12: apt-get install "
      "libtorch-dev libopenblas0-openmp (CPU), or for CUDA point CMake at a PyTorch 2.x "
      "install: -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')")
  endif()
  # TORCH_CXX_FLAGS carries the C++ ABI define; keep it as a list of options.
  separate_arguments(LIRE_TORCH_CXX_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  message(STATUS "lire: LibTorch ${Torch_VERSION} from ${TORCH_INSTALL_PREFIX}")
  lire_require(CLI11 libcli11-dev)
  lire_require(spdlog libspdlog-dev)
endif()

if(LIRE_BUILD_TESTS)
  lire_require(GTest libgtest-dev)
endif()
