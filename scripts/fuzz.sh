#!/usr/bin/env bash
# Exploratory fuzzing of lire's parsers of untrusted input (docs/robustness.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Targets: safetensors_header, jsonl_record, config (default: all), each run for
# SECONDS_PER_TARGET (default 300) with libFuzzer under ASan+UBSan, one job at
# a time, starting from the committed corpus fuzz/corpus/<target>/ (read only).
# New interesting inputs go to fuzz/scratch/<target>/ and crashes, leaks and
# timeouts to fuzz/findings/<target>/ (both git-ignored). fuzz/<target>.dict,
# when present, is the target's libFuzzer dictionary. Exits 1 when a
# target left findings.
#
# Needs clang and libFuzzer (Debian: clang, libclang-rt-dev); installs them
# when missing. Builds into build-fuzz/ (or $LIRE_FUZZ_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(safetensors_header jsonl_record config)
SECONDS_PER_TARGET=${1:-300}
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
  echo "fuzz.sh: SECONDS_PER_TARGET must be a positive integer, got '$SECONDS_PER_TARGET'" >&2
  exit 2
fi
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
  if [[ ! " ${ALL_TARGETS[*]} " =~ " $t " ]]; then
    echo "fuzz.sh: unknown target '$t' (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done

# clang and its libFuzzer runtime, from Debian's packages (only when missing).
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
install_missing fuzz.sh clang libclang-rt-dev

BUILD_DIR=${LIRE_FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLIRE_WITH_TORCH=OFF -DLIRE_BUILD_BENCH=OFF -DLIRE_FUZZ=ON -DLIRE_SANITIZE=address,undefined
fi
cmake --build "$BUILD_DIR" -j "${LIRE_FUZZ_BUILD_JOBS:-$(nproc)}" --target $(printf 'lire-fuzz-%s ' "${TARGETS[@]}")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
for t in "${TARGETS[@]}"; do
  corpus=fuzz/corpus/$t scratch=fuzz/scratch/$t findings=fuzz/findings/$t
  mkdir -p "$scratch" "$findings"
  echo "== $t: ${SECONDS_PER_TARGET}s (corpus $corpus, new inputs $scratch, findings $findings)"
  # The first corpus folder receives new inputs: the scratch one, so the
  # committed corpus only grows by hand (findings and a few good seeds).
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  set +e
  "$BUILD_DIR/fuzz/lire-fuzz-$t" "$scratch" "$corpus" "${dict[@]}" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$findings/" -print_final_stats=1 2>&1 | tee "$findings/last-run.log" | \
    grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|==[0-9]+==ERROR|SUMMARY|stat::|artifact_prefix|Test unit written|fuzz invariant)'
  rc=${PIPESTATUS[0]}
  set -e
  found=$(find "$findings" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  echo "== $t: exit $rc, $found finding(s) in $findings (full log: $findings/last-run.log)"
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then status=1; fi
done

if [ "$status" -ne 0 ]; then
  cat <<'HELP'

Findings. For each file F in fuzz/findings/<target>/:
  1. reproduce:  build-fuzz/fuzz/lire-fuzz-<target> F
  2. minimise:   build-fuzz/fuzz/lire-fuzz-<target> -minimize_crash=1 -runs=10000 F
                 (writes minimized-from-* next to it)
  3. fix the parser so the input gets one clear lire error (file/line/key/tensor),
     add a unit test for it next to the parser's tests (tests/io, tests/data, tests/config)
  4. add the (minimised) input to the corpus:  cp F fuzz/corpus/<target>/finding-<what>
     and check that the replay passes:  ctest --test-dir build-asan -R fuzz
  5. list it under "Findings" in docs/robustness.md
HELP
fi
exit $status
