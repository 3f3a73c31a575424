#!/usr/bin/env bash
# Installs what is missing, builds, and runs the quick test suite (CTest label
# "quick"; slow suites have their own labels and commands).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${LIRE_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" -L quick --output-on-failure -j "$(nproc)"
