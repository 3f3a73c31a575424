#!/usr/bin/env bash
# End-to-end checks of the command-line tools: exit codes, one-line errors
# naming file/line/key, --version/--print-config, atomic JSON output, and a loss
# value checked against an independent formula (awk).
# Usage: cli_test.sh BIN_DIR REPO_ROOT
set -uo pipefail
BIN=$1
ROOT=$2
# shellcheck source=tests/apps/lib.sh
source "$(dirname "$0")/lib.sh"

LOSS="$BIN/lire-loss"
DATA="$ROOT/configs/examples/scored-lists.jsonl"

# --version and --help
out=$("$LOSS" --version); check "--version exit" $?
echo "$out" | grep -qE '^lire-loss [0-9]+\.[0-9]+\.[0-9]+ \(commit [^,]+, LibTorch [0-9.]+'; check "--version text: $out" $?
"$LOSS" --help | grep -q -- "--threads"; check "--help lists --threads" $?

# --print-config shows the resolved tree, overrides and --threads included
"$LOSS" --config "$ROOT/configs/lipo.yaml" --data "$DATA" --threads 1 loss.beta=0.2 --print-config >"$TMP/cfg.yaml"
check "--print-config exit" $?
grep -q "name: lipo" "$TMP/cfg.yaml"; check "print-config has loss.name" $?
grep -q "beta: 0.2" "$TMP/cfg.yaml"; check "print-config has the override" $?
grep -q "threads: 1" "$TMP/cfg.yaml"; check "print-config has --threads" $?

# Config errors: one line, naming the key and where it came from
printf 'loss:\n  name: lire\n  temprature: 3\n' >"$TMP/typo.yaml"
expect_fail "unknown key" "typo.yaml:3: unknown key loss.temprature; did you mean loss.temperature?" \
  "$LOSS" --config "$TMP/typo.yaml" --data "$DATA"
expect_fail "unknown section" "did you mean loss" "$LOSS" --data "$DATA" los.name=lire
expect_fail "bad loss name" "did you mean lipo" "$LOSS" --data "$DATA" loss.name=lipoo
expect_fail "out of range" "loss.beta: must be > 0" "$LOSS" --data "$DATA" loss.name=dpo loss.beta=-1
expect_fail "wrong type" "loss.temperature" "$LOSS" --data "$DATA" loss.temperature=hot
expect_fail "option of another loss" "not an option of loss 'dpo'" "$LOSS" --data "$DATA" loss.name=dpo loss.temperature=3
expect_fail "not an override" "overrides are section.key=value" "$LOSS" --data "$DATA" loss.beta
expect_fail "bad device" "runtime.device" "$LOSS" --data "$DATA" runtime.device=tpu

# Data errors: file:line and the reason
printf '{"logps": [-1, -2], "rewards": [1, 0]}\n{"logps": [-1, -2], "rewards": [1]}\n' >"$TMP/bad.jsonl"
expect_fail "mismatched lengths" "bad.jsonl:2: 'rewards' has 1 entries but 'logps' has 2" "$LOSS" --data "$TMP/bad.jsonl"
printf '{"logps": [-1, -2], "rewards": [1, 0]}\n{"logps": [-1, -2], "rewards": [1, NaN]}\n' >"$TMP/nan.jsonl"
expect_fail "NaN reward" "nan.jsonl:2: invalid JSON" "$LOSS" --data "$TMP/nan.jsonl"
expect_fail "missing file" "no-such.jsonl" "$LOSS" --data "$TMP/no-such.jsonl"

# A value checked against the DPO-BT formula, computed here with awk.
printf '{"logps": [-10.0, -12.5], "ref_logps": [-11.0, -11.5], "rewards": [1, 0]}\n' >"$TMP/one.jsonl"
"$LOSS" --data "$TMP/one.jsonl" loss.name=dpo loss.beta=0.5 loss.label_transform=none --output "$TMP/r.json" >/dev/null
check "dpo run exit" $?
got=$(grep -m1 '"value"' "$TMP/r.json" | sed -E 's/.*: *([-0-9.eE+]+).*/\1/')
want=$(awk 'BEGIN { m = 0.5 * ((-10.0 - -11.0) - (-12.5 - -11.5)); printf "%.12f", log(1 + exp(-m)) }')
awk -v g="$got" -v w="$want" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d < 1e-9) }'
check "dpo value $got equals the DPO-BT formula $want" $?
[ ! -e "$TMP/r.json.tmp" ] && ! ls "$TMP" | grep -q '\.tmp\.'; check "no temporary file left" $?

# --all on the example lists: every registered loss reports a finite value
"$LOSS" --data "$DATA" --all --output "$TMP/all.json" >"$TMP/all.txt"
check "--all exit" $?
for name in lire lipo dpo dpo-pl slic point-mse point-sigmoid nce sft; do
  grep -q "\"loss\": \"$name\"" "$TMP/all.json"; check "--all reports $name" $?
done
! grep -qiE 'nan|inf' "$TMP/all.txt"; check "--all values are finite" $?

# lire-score end to end on the tiny HF fixtures: exit codes, fields, atomic output
SCORE="$BIN/lire-score"
FIX="$ROOT/tests/fixtures/hf"
"$SCORE" --version | grep -qE '^lire-score [0-9]'; check "lire-score --version" $?
printf '{"id": "a", "prompt": "What is 2+2?", "responses": ["4", "It is four.", "five"]}\n{"id": "b", "prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}\n' >"$TMP/lists.jsonl"
"$SCORE" --data "$TMP/lists.jsonl" --output "$TMP/scored.jsonl" --policy "$FIX/llama_tiny" --no-progress model.dtype=fp32 >"$TMP/score.out" 2>&1
check "lire-score --policy exit" $?
[ "$(grep -c '"ref_logps"' "$TMP/scored.jsonl")" -eq 2 ]; check "lire-score adds ref_logps to every record" $?
[ "$(grep -c '"ref_token_counts"' "$TMP/scored.jsonl")" -eq 2 ]; check "lire-score adds ref_token_counts" $?
grep -q "lists/s" "$TMP/score.out"; check "lire-score prints a throughput line" $?
[ ! -e "$TMP/scored.jsonl.partial" ]; check "no partial file left" $?
expect_fail "lire-score without models" "nothing to do" "$SCORE" --data "$TMP/lists.jsonl" --output "$TMP/x.jsonl"
expect_fail "lire-score existing field" "scored.jsonl:1: field 'ref_logps' is already there; pass --overwrite" \
  "$SCORE" --data "$TMP/scored.jsonl" --output "$TMP/y.jsonl" --policy "$FIX/llama_tiny" --no-progress
expect_fail "lire-score bad folder" "config.json" "$SCORE" --data "$TMP/lists.jsonl" --output "$TMP/z.jsonl" --policy "$TMP"
[ ! -e "$TMP/y.jsonl" ] && [ ! -e "$TMP/z.jsonl" ]; check "failed runs write no output" $?

# lire-sample and lire-eval: the loop on the tiny fixture (sample -> train on
# the pool -> evaluate the adapter against the base policy's responses)
SAMPLE="$BIN/lire-sample"
EVAL="$BIN/lire-eval"
"$SAMPLE" --version | grep -qE '^lire-sample [0-9]'; check "lire-sample --version" $?
"$EVAL" --version | grep -qE '^lire-eval [0-9]'; check "lire-eval --version" $?
head -12 "$ROOT/configs/data/tiny/train.jsonl" >"$TMP/prompts.jsonl"
RULE=('rewards.short={type: length, max_chars: 12}')
"$SAMPLE" --data "$TMP/prompts.jsonl" --output "$TMP/pool.jsonl" --policy "$FIX/llama_tiny" --num-samples 3 \
  --max-new-tokens 6 --temperature 0.9 --top-k 40 --seed 3 --reward short --no-progress "${RULE[@]}" >"$TMP/sample.out" 2>&1
check "lire-sample exit" $?
[ "$(wc -l <"$TMP/pool.jsonl")" -eq 12 ]; check "lire-sample writes one pool per prompt" $?
grep -q '"responses_ids"' "$TMP/pool.jsonl" && grep -q '"rewards"' "$TMP/pool.jsonl"; check "pools carry token ids and rewards" $?
grep -q "generated tokens/s" "$TMP/sample.out"; check "lire-sample prints throughput" $?
[ ! -e "$TMP/pool.jsonl.partial" ]; check "lire-sample leaves no partial file" $?
"$SAMPLE" --data "$TMP/prompts.jsonl" --output "$TMP/pool2.jsonl" --policy "$FIX/llama_tiny" --num-samples 3 \
  --max-new-tokens 6 --temperature 0.9 --top-k 40 --seed 3 --reward short --no-progress "${RULE[@]}" sample.batch_prompts=5 >/dev/null 2>&1
cmp -s <(python3 -c 'import json,sys; [print(json.loads(l)["responses_ids"]) for l in open(sys.argv[1])]' "$TMP/pool.jsonl") \
       <(python3 -c 'import json,sys; [print(json.loads(l)["responses_ids"]) for l in open(sys.argv[1])]' "$TMP/pool2.jsonl")
check "lire-sample: same seed, same pool at another batch size" $?
expect_fail "lire-sample bad strategy" "sample.strategy" "$SAMPLE" --data "$TMP/prompts.jsonl" --output "$TMP/p3.jsonl" \
  --policy "$FIX/llama_tiny" --strategy nucleus
"$SAMPLE" --data "$TMP/prompts.jsonl" --output "$TMP/p4.jsonl" --policy "$FIX/llama_tiny" --top-k >/dev/null 2>&1
[ $? -eq 2 ]; check "lire-sample usage error exits 2" $?
[ ! -e "$TMP/p3.jsonl" ] && [ ! -e "$TMP/p4.jsonl" ]; check "failed lire-sample runs write no output" $?
"$BIN/lire-train" --config "$ROOT/configs/tiny.yaml" "model.path=$FIX/llama_tiny" "data.train=$TMP/pool.jsonl" \
  data.eval=null output.keep_best=null train.max_steps=2 --threads 1 --output "$TMP/pool-run" >/dev/null 2>&1
check "lire-train trains on a lire-sample pool" $?
"$SAMPLE" --data "$TMP/prompts.jsonl" --output "$TMP/base.jsonl" --policy "$FIX/llama_tiny" --strategy greedy \
  --max-new-tokens 6 --no-progress >/dev/null 2>&1
"$EVAL" --data "$TMP/prompts.jsonl" --output "$TMP/report" --policy "$FIX/llama_tiny" --adapter "$TMP/pool-run/final/adapter" \
  --baseline "$TMP/base.jsonl" --reference "$FIX/llama_tiny" --strategy greedy --max-new-tokens 6 --no-progress \
  "${RULE[@]}" >"$TMP/eval.out" 2>&1
check "lire-eval exit" $?
[ -f "$TMP/report/report.json" ] && [ -f "$TMP/report/report.md" ] && [ "$(wc -l <"$TMP/report/examples.jsonl")" -eq 12 ]
check "lire-eval writes report.json, report.md, examples.jsonl" $?
grep -q "| short |" "$TMP/eval.out" && grep -q "KL(pi || pi_ref)" "$TMP/eval.out"; check "lire-eval prints the table and KL" $?
expect_fail "lire-eval into a used folder" "pass --overwrite" "$EVAL" --data "$TMP/prompts.jsonl" --output "$TMP/report" \
  --responses "$TMP/pool.jsonl" "${RULE[@]}"
expect_fail "lire-eval policy and responses" "not both" "$EVAL" --data "$TMP/prompts.jsonl" --output "$TMP/r9" \
  --responses "$TMP/pool.jsonl" --policy "$FIX/llama_tiny" "${RULE[@]}"

# lire-merge: an HF folder out, one-line errors
MERGE="$BIN/lire-merge"
"$MERGE" --model "$FIX/llama_tiny" --adapter "$FIX/llama_tiny_lora" --output "$TMP/merged" >/dev/null
check "lire-merge exit" $?
[ -f "$TMP/merged/model.safetensors" ] && [ -f "$TMP/merged/config.json" ] && [ -f "$TMP/merged/tokenizer.model" ]
check "lire-merge writes a complete HF folder" $?
expect_fail "lire-merge into a non-empty folder" "exists and is not empty" \
  "$MERGE" --model "$FIX/llama_tiny" --adapter "$FIX/llama_tiny_lora" --output "$TMP/merged"
expect_fail "lire-merge bad adapter" "adapter_config.json" \
  "$MERGE" --model "$FIX/llama_tiny" --adapter "$TMP" --output "$TMP/merged2"

# lire-train: a short run, a real kill -9 and --resume (bitwise equal to an
# uninterrupted run), one-line errors
TRAIN="$BIN/lire-train"
TINY=(--config "$ROOT/configs/tiny.yaml" "model.path=$FIX/llama_tiny" "data.train=$ROOT/configs/data/tiny/train.jsonl"
      "data.eval=$ROOT/configs/data/tiny/eval.jsonl" eval.max_lists=16 eval.every=0 output.keep_best=null --threads 1)
"$TRAIN" "${TINY[@]}" --output "$TMP/run" train.max_steps=2 train.log_every=1 >"$TMP/train.out" 2>&1
check "lire-train exit" $?
[ -f "$TMP/run/final/adapter/adapter_config.json" ] && [ -f "$TMP/run/final/adapter/adapter_model.safetensors" ]
check "lire-train writes final/adapter in PEFT's format" $?
[ "$(grep -c '"eval/pair_accuracy"' "$TMP/run/metrics.jsonl")" -eq 2 ]; check "eval at step 0 and at the end" $?
[ "$(grep -c '"train/loss"' "$TMP/run/metrics.jsonl")" -eq 2 ]; check "one train line a step" $?
grep -q '"world_size": 1' "$TMP/run/run.json"; check "run.json provenance" $?
grep -q "lists/s" "$TMP/train.out"; check "lire-train prints throughput" $?
expect_fail "lire-train into a used folder" "is not empty; pass --resume" "$TRAIN" "${TINY[@]}" --output "$TMP/run"
# A list with one response: a ranking loss learns nothing from it, and says so.
{ head -5 "$ROOT/configs/data/tiny/train.jsonl"
  echo '{"prompt": "x", "responses": ["a"], "rewards": [1]}'; } >"$TMP/single.jsonl"
"$TRAIN" "${TINY[@]}" --output "$TMP/single" "data.train=$TMP/single.jsonl" train.max_steps=1 eval.at_start=false \
  >"$TMP/single.out" 2>&1
check "lire-train with a one-response list exit" $?
grep -q "single.jsonl: 1 of 6 .* lists have a single response: the .* loss learns nothing from them" "$TMP/single.out"
check "lire-train warns about one-response lists" $?
expect_fail "lire-train unknown key" "did you mean train.lr" "$TRAIN" "${TINY[@]}" --output "$TMP/r2" train.lrr=1
head -3 "$ROOT/configs/data/tiny/train.jsonl" >"$TMP/bad.jsonl"
echo '{"prompt": "x", "responses": ["a", "b"], "rewards": [1]}' >>"$TMP/bad.jsonl"
expect_fail "lire-train malformed data" "bad.jsonl:4" "$TRAIN" "${TINY[@]}" --output "$TMP/r3" "data.train=$TMP/bad.jsonl"
[ ! -e "$TMP/r3/final" ]; check "a failed run writes no final outputs" $?
"$TRAIN" "${TINY[@]}" --output "$TMP/r4" --resume --resume-from "$TMP/run" >/dev/null 2>&1
[ $? -eq 2 ]; check "--resume and --resume-from exclude each other (usage error, exit 2)" $?
"$TRAIN" "${TINY[@]}" --print-config | grep -q "max_steps\|keep_last"; check "lire-train --print-config needs no --output" $?
expect_fail "lire-train without --output" "--output DIR is required" "$TRAIN" "${TINY[@]}"

LONG=(train.max_steps=24 output.save_every=2 output.keep_last=0 lora.dropout=0.1)
"$TRAIN" "${TINY[@]}" "${LONG[@]}" --output "$TMP/straight" >/dev/null 2>&1
check "uninterrupted run exit" $?
# 50 ms after each step (LIRE_TEST_STEP_PAUSE_MS): the kill lands before the end on any machine.
LIRE_TEST_STEP_PAUSE_MS=50 "$TRAIN" "${TINY[@]}" "${LONG[@]}" --output "$TMP/killed" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -e "$TMP/killed/checkpoints/step-4/trainer_state.json" ] && break; sleep 0.05; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ ! -e "$TMP/killed/final" ]; check "the killed run did not finish" $?
"$TRAIN" "${TINY[@]}" "${LONG[@]}" --output "$TMP/killed" --resume >"$TMP/resume.out" 2>&1
check "--resume exit" $?
grep -q "resumed from" "$TMP/resume.out"; check "--resume continues from a checkpoint" $?
cmp -s "$TMP/straight/final/adapter/adapter_model.safetensors" "$TMP/killed/final/adapter/adapter_model.safetensors"
check "kill -9 + --resume gives the uninterrupted run's adapter, bit for bit" $?

finish
