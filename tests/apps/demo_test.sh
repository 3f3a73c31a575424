#!/usr/bin/env bash
# A fast variant of the embedded demo (scripts/demo.sh) with its configs
# (configs/demo/*.yaml): a smaller world (256 prompts), the SFT policy, LIRE
# over two Evolve steps, lire-eval against the SFT policy on 64 held-out
# prompts. Asserts that the reward goes up across Evolve steps (pools and
# held-out samples) and that the aligned policy beats the SFT policy with a
# CI above 50%. About 10 s on one core.
# Usage: demo_test.sh BIN_DIR REPO_ROOT
set -uo pipefail
BIN=$1
ROOT=$2
# shellcheck source=tests/apps/lib.sh
source "$(dirname "$0")/lib.sh"
# value FILE STEP KEY: KEY of the metrics line of Evolve step STEP
value() { grep "\"evolve/step\":$2[,}]" "$1" | grep -o "\"$3\":[-0-9.e]*" | cut -d: -f2; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a > b)}'; }

cd "$ROOT" || exit 1
W="$TMP/world"
"$BIN/lire-demo-world" --output "$W" --train-prompts 256 --eval-prompts 64 >"$TMP/world.log" 2>&1
check "lire-demo-world exit" $?
"$BIN/lire-train" --config configs/demo/sft.yaml --output "$TMP/sft" --no-progress "model.path=$W/model-init" \
  "data.train=$W/data/sft.jsonl" >"$TMP/sft.log" 2>&1
check "SFT exit" $?
SFT="$TMP/sft/final/model"
"$BIN/lire-train" --config configs/demo/lire.yaml --output "$TMP/lire" --no-progress "model.path=$SFT" \
  "data.train=$W/data/prompts.jsonl" "evolve.eval_prompts=$W/data/eval.jsonl" \
  >"$TMP/lire.log" 2>&1
check "LIRE Evolve exit" $?
M="$TMP/lire/metrics.jsonl"
e0=$(value "$M" 0 evolve/eval_reward)
e1=$(value "$M" 1 evolve/eval_reward)
e2=$(value "$M" 2 evolve/eval_reward)
p1=$(value "$M" 1 evolve/mean_reward)
p2=$(value "$M" 2 evolve/mean_reward)
echo "held-out reward by Evolve step: $e0 -> $e1 -> $e2; pool mean reward: $p1 -> $p2"
gt "$e1" "$e0" && gt "$e2" "$e1"; check "the held-out reward rises at every Evolve step ($e0 -> $e1 -> $e2)" $?
gt "$p2" "$p1"; check "the second pool (sampled by the step-1 policy) scores higher than the first ($p1 -> $p2)" $?
gt "$e2" "$(awk -v a="$e0" 'BEGIN {print a + 0.1}')"; check "the held-out reward rises by more than 0.1" $?

EVAL=(--data "$W/data/eval.jsonl" --config configs/demo/eval.yaml --reference "$SFT" --no-progress)
"$BIN/lire-sample" --data "$W/data/eval.jsonl" --output "$TMP/sft.jsonl" --policy "$SFT" \
  --config configs/demo/eval.yaml --no-progress >/dev/null 2>&1
check "SFT responses exit" $?
"$BIN/lire-eval" "${EVAL[@]}" --baseline "$TMP/sft.jsonl" --responses "$TMP/sft.jsonl" --output "$TMP/eval-sft" \
  >/dev/null 2>&1
check "lire-eval SFT exit" $?
"$BIN/lire-eval" "${EVAL[@]}" --baseline "$TMP/sft.jsonl" --policy "$TMP/lire/final/model" --output "$TMP/eval-lire" \
  >/dev/null 2>&1
check "lire-eval aligned exit" $?
"$BIN/lire-demo-report" --headline lire --report SFT="$TMP/eval-sft" --report lire="$TMP/eval-lire" >"$TMP/table" 2>&1
check "lire-demo-report exit" $?
cat "$TMP/table"
last=$(tail -1 "$TMP/table")
echo "$last" | grep -qE '^win rate aligned \(lire\) vs SFT: [0-9]+\.[0-9]% \(95% CI [0-9]+\.[0-9]-[0-9]+\.[0-9]%\)$'
check "the headline line's form" $?
lower=$(echo "$last" | sed -E 's/.*CI ([0-9.]+)-.*/\1/')
gt "$lower" 50; check "the aligned policy beats SFT: CI lower bound $lower% > 50%" $?
grep -q '^| SFT | [0-9.]* | 50.0% (50.0-50.0%) | 0.000 |$' "$TMP/table"
check "the SFT row: 50% against itself, KL 0" $?

finish
