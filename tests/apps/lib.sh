# Shared by the tests/apps/*_test.sh scripts (sourced, after BIN and ROOT are
# set): a temporary folder removed at exit, pass/fail counting, and the
# one-line-error check.

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

check() {  # check NAME CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1"; fi
}

# expect_fail NAME EXPECTED-SUBSTRING CMD...: non-zero exit, one stderr line containing the substring
expect_fail() {
  local name=$1 want=$2
  shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  local lines
  lines=$(wc -l <"$TMP/err")
  if [ $rc -ne 0 ] && grep -qF -- "$want" "$TMP/err" && [ "$lines" -eq 1 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name (exit $rc, $lines stderr lines, wanted '$want'):"
    cat "$TMP/err"
  fi
}

# The last line of every script: the counts, and the exit status.
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
