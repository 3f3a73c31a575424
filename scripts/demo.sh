#!/usr/bin/env bash
# The README's first command: install, build, then run the main job on the
# embedded default, a complete offline alignment story on a tiny model the
# project makes itself (docs/demo.md):
#
#   1. world   lire-demo-world: a word-sorting task, its prompts, a
#              sentencepiece tokenizer trained on its text, a random-init
#              tiny Llama in Hugging Face format
#   2. SFT     lire-train (loss sft, configs/demo/sft.yaml): an imperfect policy
#   3. align   lire-train with Evolve (configs/demo/lire.yaml, lipo.yaml): two
#              Evolve steps of lire-sample pools scored by the rule reward
#              (rouge-l against the sorted words), LIRE and LiPO-lambda
#   4. eval    lire-eval of every policy on held-out prompts against the SFT
#              policy's responses: mean reward, win rate with its bootstrap
#              CI, KL to the SFT policy
#
# Everything goes to out/demo/. A second run reuses the build and every
# finished stage (seconds); `rm -rf out/demo` starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BIN=${LIRE_BUILD_DIR:-build}
OUT=${LIRE_DEMO_DIR:-out/demo}
THREADS=${LIRE_DEMO_THREADS:-1}  # the tiny model gains nothing from intra-op threads
start=$(date +%s)
stage() { echo; echo "== $* ($(($(date +%s) - start)) s)"; }
mkdir -p "$OUT/logs"
run() {  # run LOG CMD...: the command's output goes to $OUT/logs/LOG; its tail is shown if it fails
  local log="$OUT/logs/$1"
  shift
  "$@" >"$log" 2>&1 || { tail -5 "$log" >&2; echo "demo: failed; the whole log is $log" >&2; exit 1; }
}

stage "1. world: task data, sentencepiece tokenizer, random-init tiny Llama -> $OUT/world"
if [ ! -f "$OUT/world/world.json" ]; then
  run world.log "$BIN/lire-demo-world" --output "$OUT/world"
  tail -1 "$OUT/logs/world.log"
else
  echo "exists"
fi

# Every config names out/demo/...; another folder is passed as overrides.
paths=(model.path="$OUT/world/model-init" data.train="$OUT/world/data/sft.jsonl")
stage "2. SFT: lire-train, loss sft (configs/demo/sft.yaml) -> $OUT/sft"
run sft.log "$BIN/lire-train" --config configs/demo/sft.yaml --output "$OUT/sft" --resume --no-progress \
  --threads "$THREADS" "${paths[@]}"
grep -E "done:" "$OUT/logs/sft.log" | sed 's/.*\] //'
SFT="$OUT/sft/final/model"

align=(model.path="$SFT" data.train="$OUT/world/data/prompts.jsonl" evolve.eval_prompts="$OUT/world/data/eval.jsonl")
for loss in lire lipo; do
  stage "3. align: lire-train with Evolve, loss $loss (configs/demo/$loss.yaml) -> $OUT/$loss"
  run "$loss.log" "$BIN/lire-train" --config "configs/demo/$loss.yaml" --output "$OUT/$loss" --resume --no-progress \
    --threads "$THREADS" "${align[@]}"
  grep -E "evolve [0-9]+/[0-9]+: pool of|evolve [0-9]+/[0-9]+ done|evolve done" "$OUT/logs/$loss.log" | sed 's/.*\] //'
done

stage "4. eval: lire-eval on $(wc -l <"$OUT/world/data/eval.jsonl") held-out prompts against the SFT policy"
EVAL=(--data "$OUT/world/data/eval.jsonl" --config configs/demo/eval.yaml --reference "$SFT" --no-progress
      --threads "$THREADS")
mkdir -p "$OUT/eval"
if [ ! -f "$OUT/eval/sft.jsonl" ]; then
  run eval-sft-sample.log "$BIN/lire-sample" --data "$OUT/world/data/eval.jsonl" --output "$OUT/eval/sft.jsonl" \
    --policy "$SFT" --config configs/demo/eval.yaml --no-progress --threads "$THREADS"
fi
report() {  # report NAME lire-eval-flags...
  local name=$1
  shift
  [ -f "$OUT/eval/$name/report.json" ] ||
    run "eval-$name.log" "$BIN/lire-eval" "${EVAL[@]}" --baseline "$OUT/eval/sft.jsonl" --output "$OUT/eval/$name" "$@"
}
report sft --responses "$OUT/eval/sft.jsonl"
report lire --policy "$OUT/lire/final/model"
report lipo --policy "$OUT/lipo/final/model"

stage "result"
"$BIN/lire-demo-report" --headline lire --report SFT="$OUT/eval/sft" --report lire="$OUT/eval/lire" \
  --report lipo-lambda="$OUT/eval/lipo"
