#!/usr/bin/env bash
# The GPU recipe: build lire against the CUDA LibTorch inside a GPU machine's
# PyTorch, run the tests, and run lire-bench on the GPU (docs/perf.md, "On a
# GPU"). Two halves, on two machines:
#
#   scripts/gpu.sh fetch      here, on Debian 12 (network to Debian's mirror):
#                             downloads the Debian 12 packages lire needs besides
#                             LibTorch and unpacks them into .gpu-deps/ (ignored
#                             by git; a few MiB). Idempotent.
#   scripts/gpu.sh build      on the GPU machine: configures build-cuda/ with
#   scripts/gpu.sh test       python3's torch (torch.utils.cmake_prefix_path) and
#   scripts/gpu.sh bench      .gpu-deps/, builds, runs the quick tests, runs the
#   scripts/gpu.sh all        benchmarks. Reports go to $OUT (or gpu-out/).
#
# With the device tool, each step is one call that carries .gpu-deps (and
# build-cuda once it exists on a warm machine, which keeps it between calls):
#   run(command="scripts/gpu.sh build", carry=[".gpu-deps"])
#   run(command="scripts/gpu.sh test",  carry=[".gpu-deps"])
#   run(command="scripts/gpu.sh bench", carry=[".gpu-deps"])
# A cold machine needs `build` again. Each step fits in a 10-minute call on a
# 16-core machine; `all` runs the three in one command.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEPS=$ROOT/.gpu-deps
SYSROOT=$DEPS/root
BUILD_DIR=${LIRE_BUILD_DIR:-build-cuda}
REPORT=${OUT:-$ROOT/gpu-out}
ARCH_LIB=usr/lib/x86_64-linux-gnu

# Debian 12 packages: headers, CMake configs and shared libraries of every
# dependency except LibTorch (the GPU machine's PyTorch brings that), plus
# pkgconf for sentencepiece's .pc file and gloo's headers in case the
# PyTorch wheel ships none.
PACKAGES=(
  nlohmann-json3-dev libcli11-dev
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  libyaml-cpp-dev libyaml-cpp0.7
  libsentencepiece-dev libsentencepiece0 sentencepiece
  libgtest-dev libgmock-dev
  pkgconf pkgconf-bin libpkgconf3
)
# Unpacked apart (.gpu-deps/gloo): added to the include path only when the
# PyTorch wheel has no gloo headers of its own.
GLOO_PACKAGES=(libgloo-dev)

fetch() {
  rm -rf "$DEPS"
  mkdir -p "$DEPS/debs" "$SYSROOT"
  mkdir -p "$DEPS/debs/gloo" "$DEPS/gloo"
  (cd "$DEPS/debs" && apt-get download "${PACKAGES[@]}" >/dev/null)
  (cd "$DEPS/debs/gloo" && apt-get download "${GLOO_PACKAGES[@]}" >/dev/null)
  for deb in "$DEPS"/debs/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
  for deb in "$DEPS"/debs/gloo/*.deb; do dpkg-deb -x "$deb" "$DEPS/gloo"; done
  rm -rf "$DEPS/debs"  # only the unpacked trees travel
  echo "gpu.sh fetch: $((${#PACKAGES[@]} + ${#GLOO_PACKAGES[@]})) packages unpacked in $DEPS ($(du -sh "$DEPS" | cut -f1))"
}

# The environment every GPU step shares: where torch, the carried libraries and
# pkg-config are.
environment() {
  [ -d "$SYSROOT/usr/include" ] || { echo "gpu.sh: $SYSROOT is missing; run 'scripts/gpu.sh fetch' first and carry .gpu-deps" >&2; exit 2; }
  PYTHON=${PYTHON:-python3}
  # LIRE_TORCH_DIR: a LibTorch tree (include/, lib/, share/cmake/) instead of python3's torch.
  TORCH_DIR=${LIRE_TORCH_DIR:-$("$PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))')}
  TORCH_CMAKE=${LIRE_TORCH_CMAKE_PREFIX:-$TORCH_DIR/share/cmake}
  export LD_LIBRARY_PATH="$SYSROOT/$ARCH_LIB:$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_SYSROOT_DIR=$SYSROOT
  export PKG_CONFIG_LIBDIR="$SYSROOT/$ARCH_LIB/pkgconfig:$SYSROOT/usr/share/pkgconfig"
  PKG_CONFIG=$(command -v pkg-config || true)
  [ -n "$PKG_CONFIG" ] || PKG_CONFIG=$SYSROOT/usr/bin/pkgconf
  mkdir -p "$REPORT"
}

build() {
  environment
  local extra=()
  # ProcessGroupGloo.hpp includes gloo's headers; use Debian's only when the
  # wheel has none of its own.
  [ -d "$TORCH_DIR/include/gloo" ] || extra+=(-DCMAKE_CXX_FLAGS="-isystem $DEPS/gloo/usr/include")
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_PREFIX_PATH="$TORCH_CMAKE;$SYSROOT/usr;$SYSROOT/$ARCH_LIB/cmake" \
      -DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG" -DLIRE_CCACHE=OFF "${extra[@]}" 2>&1 | tee "$REPORT/configure.log"
  fi
  # LIRE_GPU_TARGETS: some CMake targets only (default: all).
  local targets=()
  for t in ${LIRE_GPU_TARGETS:-}; do targets+=(--target "$t"); done
  { time cmake --build "$BUILD_DIR" -j "$(nproc)" "${targets[@]}"; } 2>&1 | tail -n 40 | tee "$REPORT/build.log"
}

run_tests() {
  environment
  nvidia-smi > "$REPORT/nvidia-smi.txt" 2>&1 || true
  # Every quick test; the CUDA-parameterised ones (golden losses on CUDA, the
  # one-rank NCCL group) run instead of skipping on this machine. Then the
  # "on the test device" tests with CUDA tensors (LIRE_TEST_DEVICE): HF logits
  # parity and shared vs naive vs float64 log-probs and gradients, fp32 and bf16.
  set +e
  ctest --test-dir "$BUILD_DIR" -L quick -j 8 --output-on-failure > "$REPORT/ctest.log" 2>&1
  local rc=$?
  set -e
  LIRE_TEST_DEVICE=cuda "$BUILD_DIR"/tests/lire_tests \
    --gtest_filter='*OnTheTestDevice*:*Nccl*:*LossGolden*' > "$REPORT/cuda-tests.log" 2>&1 || rc=1
  tail -n 30 "$REPORT/ctest.log"
  grep -E "^\[  (PASSED|FAILED|SKIPPED)" "$REPORT/cuda-tests.log" || true
  return $rc
}

bench() {
  environment
  # H100 SXM dense bf16 peak: 989 TFLOP/s (the issue's MFU reference).
  local peak=${LIRE_PEAK_TFLOPS:-989}
  "$BUILD_DIR"/bench/lire-bench --device cuda --dtype bf16 --checkpointing --peak-tflops "$peak" \
    --repeats 10 --warmup 3 2>&1 | tee "$REPORT/bench-cuda-bf16-ckpt.md"
  "$BUILD_DIR"/bench/lire-bench --device cuda --dtype bf16 --peak-tflops "$peak" --no-generation \
    --repeats 10 --warmup 3 2>&1 | tee "$REPORT/bench-cuda-bf16.md"
}

case "${1:-}" in
  fetch) fetch ;;
  build) build ;;
  test) run_tests ;;
  bench) bench ;;
  all) build && run_tests; bench ;;
  *) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac
