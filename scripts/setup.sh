#!/usr/bin/env bash
# Installs lire's Debian 12 packages (only those missing), then configures and
# builds into build/ (or $LIRE_BUILD_DIR). Idempotent and quick when nothing
# changed: apt is skipped, the build directory and ccache are reused.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-openmp libgloo-dev   # LibTorch (CPU), fast BLAS, c10d's Gloo
  libsentencepiece-dev sentencepiece             # tokenizers
  nlohmann-json3-dev libcli11-dev libspdlog-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev
)

# shellcheck source=scripts/packages.sh
source scripts/packages.sh
install_missing setup "${PACKAGES[@]}"

BUILD_DIR=${LIRE_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${LIRE_CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
