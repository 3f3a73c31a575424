#!/usr/bin/env bash
# Installs what is missing, builds, and runs the quick test suite (CTest label
# "quick"; slow suites have their own labels and commands).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The test scripts (tests/apps) also read JSONL with python3.
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
install_missing test python3
BUILD_DIR=${LIRE_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" -L quick --output-on-failure -j "$(nproc)"

# The parsers of untrusted input (config, JSONL, safetensors headers) again
# under AddressSanitizer and UBSan: lire_core only, no LibTorch, so it is quick.
ASAN_DIR=${LIRE_ASAN_BUILD_DIR:-build-asan}
if [ ! -f "$ASAN_DIR/build.ninja" ]; then
  cmake -S . -B "$ASAN_DIR" -G Ninja -DLIRE_WITH_TORCH=OFF -DLIRE_SANITIZE=address,undefined
fi
cmake --build "$ASAN_DIR" -j "$(nproc)"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir "$ASAN_DIR" -L quick --output-on-failure -j "$(nproc)"
