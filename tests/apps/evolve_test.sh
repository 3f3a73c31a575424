#!/usr/bin/env bash
# lire-train's Evolve/Iterate (LIRE Algorithm 1) end to end on the tiny Llama
# fixture: run layout, metrics checked against the pools (awk), every loss of
# the registry, LoRA and full fine-tuning, kill -9 inside and between steps
# then --resume (pools and parameters bit for bit those of an uninterrupted
# run), extending a finished run with more steps, keep_human, one-line errors.
# Usage: evolve_test.sh BIN_DIR REPO_ROOT
set -uo pipefail
BIN=$1
ROOT=$2
# shellcheck source=tests/apps/lib.sh
source "$(dirname "$0")/lib.sh"

TRAIN="$BIN/lire-train"
FIX="$ROOT/tests/fixtures/hf"
head -24 "$ROOT/configs/data/tiny/train.jsonl" >"$TMP/prompts.jsonl"
head -6 "$ROOT/configs/data/tiny/eval.jsonl" >"$TMP/held.jsonl"
cat >"$TMP/evolve.yaml" <<EOF
model: {path: $FIX/llama_tiny, dtype: fp32}
lora: {r: 4, alpha: 8, dropout: 0.1}
data: {train: $TMP/prompts.jsonl}
loss: {name: lire}
train: {batch_size: 4, lr: 1.0e-2, log_every: 100}
output: {save_every: 2, keep_last: 0}
sample: {strategy: sample, max_new_tokens: 12, temperature: 1.0, batch_prompts: 2}
rewards:
  short: {type: length, max_chars: 20}
  vowel: {type: regex, pattern: "[aeiou]"}
evolve: {steps: 3, iterate: 2, samples: 3, rewards: [short, vowel], eval_prompts: $TMP/held.jsonl}
runtime: {threads: 1, seed: 5}
EOF
EV=(--config "$TMP/evolve.yaml" --no-progress)

# An uninterrupted run.
"$TRAIN" "${EV[@]}" --output "$TMP/straight" >"$TMP/straight.out" 2>&1
check "evolve run exit" $?
for e in 1 2 3; do
  [ -f "$TMP/straight/evolve-$e/pool.jsonl" ] && [ -f "$TMP/straight/evolve-$e/final/adapter/adapter_model.safetensors" ] &&
    [ -f "$TMP/straight/evolve-$e/eval.jsonl" ]
  check "evolve-$e holds its pool, eval samples and training run" $?
done
[ -f "$TMP/straight/evolve-0/eval.jsonl" ]; check "the initial policy is sampled on the eval prompts" $?
cmp -s "$TMP/straight/evolve-3/final/adapter/adapter_model.safetensors" \
  "$TMP/straight/final/adapter/adapter_model.safetensors"
check "<run>/final is the last step's final" $?
[ "$(wc -l <"$TMP/straight/metrics.jsonl")" -eq 4 ]; check "metrics.jsonl: one line per step, plus step 0" $?
[ "$(wc -l <"$TMP/straight/evolve-2/pool.jsonl")" -eq 24 ]; check "a pool has a list per prompt" $?
# 24 lists x 2 epochs / 4 lists a step = 12 optimizer steps a step, 36 in all
grep -q '"evolve/step":3,.*"step":36\|"step":36.*"evolve/step":3' "$TMP/straight/metrics.jsonl"
check "the global step counts every step's optimizer steps" $?
# evolve/mean_reward of step 2 recomputed from its pool: the mean of the first source (rewards).
want=$(tr -d ' ' <"$TMP/straight/evolve-2/pool.jsonl" | grep -o '"rewards":\[[^]]*\]' |
  sed 's/.*\[//; s/\]//' | tr ',' '\n' | awk '{s += $1; n++} END {printf "%.6f", s / n}')
got=$(grep '"evolve/step":2' "$TMP/straight/metrics.jsonl" | grep -o '"evolve/mean_reward":[-0-9.e]*' | cut -d: -f2)
awk -v a="$want" -v b="$got" 'BEGIN {exit !(a - b < 1e-6 && b - a < 1e-6)}'
check "evolve/mean_reward is the pool's mean reward ($got vs $want)" $?
grep -q '"evolve/mean_reward_vowel"' "$TMP/straight/metrics.jsonl"; check "per-source rewards with several sources" $?
grep -q '"evolve/eval_reward"' "$TMP/straight/metrics.jsonl"; check "eval reward per step" $?
grep -q "evolve done: 3 steps, 36 optimizer steps" "$TMP/straight.out"; check "summary line" $?
grep -q '"rewards_short"' "$TMP/straight/evolve-1/pool.jsonl"; check "the pool is scored by every source" $?
! cmp -s "$TMP/straight/evolve-1/pool.jsonl" "$TMP/straight/evolve-2/pool.jsonl"
check "each step samples anew" $?

# kill -9 inside step 1's training, inside step 2's sampling and between
# steps; each time --resume. Pools and parameters equal the straight run's.
# The training steps sleep 50 ms each (LIRE_TEST_STEP_PAUSE_MS), so that the
# kill lands inside the training on a machine of any speed.
kill_when() {  # kill_when FILE: run in the background, SIGKILL once FILE exists
  LIRE_TEST_STEP_PAUSE_MS=50 "$TRAIN" "${EV[@]}" --output "$TMP/killed" --resume >>"$TMP/killed.out" 2>&1 &
  local pid=$!
  for _ in $(seq 1 1200); do [ -e "$1" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.01; done
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
}
kill_when "$TMP/killed/evolve-1/checkpoints/step-4/trainer_state.json"
[ ! -e "$TMP/killed/evolve-1/final" ]; check "killed inside step 1's training" $?
kill_when "$TMP/killed/evolve-2/pool.jsonl.partial"
kill_when "$TMP/killed/evolve-2/final/trainer_state.json"
kill_when "$TMP/killed/evolve-3/checkpoints/step-2/trainer_state.json"
"$TRAIN" "${EV[@]}" --output "$TMP/killed" --resume >>"$TMP/killed.out" 2>&1
check "final --resume exit" $?
grep -q "resumed from" "$TMP/killed.out"; check "a step resumed from its checkpoint" $?
for e in 1 2 3; do
  cmp -s "$TMP/straight/evolve-$e/pool.jsonl" "$TMP/killed/evolve-$e/pool.jsonl"
  check "killed + resumed: evolve-$e pool bit for bit" $?
done
cmp -s "$TMP/straight/final/adapter/adapter_model.safetensors" "$TMP/killed/final/adapter/adapter_model.safetensors"
check "killed + resumed: final adapter bit for bit" $?
cmp -s "$TMP/straight/metrics.jsonl" "$TMP/killed/metrics.jsonl"; check "killed + resumed: same metrics.jsonl" $?

# Between steps, exactly: one step, then the same run extended to three.
"$TRAIN" "${EV[@]}" --output "$TMP/extended" evolve.steps=1 >/dev/null 2>&1
check "one-step run exit" $?
"$TRAIN" "${EV[@]}" --output "$TMP/extended" --resume >/dev/null 2>&1
check "extended to three steps exit" $?
cmp -s "$TMP/straight/final/adapter/adapter_model.safetensors" "$TMP/extended/final/adapter/adapter_model.safetensors"
check "a run extended step by step equals the uninterrupted one" $?

# Every loss of the registry, one short step each (reference: adapter-off where one is needed).
for loss in lire lipo dpo dpo-pl slic point-mse point-sigmoid nce sft; do
  "$TRAIN" "${EV[@]}" --output "$TMP/loss-$loss" loss.name=$loss evolve.steps=2 evolve.iterate=1 \
    evolve.eval_prompts=null output.save_every=0 >"$TMP/loss.out" 2>&1
  rc=$?
  [ $rc -eq 0 ] && [ -f "$TMP/loss-$loss/final/adapter/adapter_model.safetensors" ] &&
    [ "$(wc -l <"$TMP/loss-$loss/metrics.jsonl")" -eq 2 ]
  check "evolve with loss $loss" $?
  [ $rc -eq 0 ] || tail -3 "$TMP/loss.out"
done
# Full fine-tuning: the next step samples with the previous step's exported model.
"$TRAIN" "${EV[@]}" --output "$TMP/full" lora.enabled=false evolve.steps=2 evolve.iterate=1 train.lr=1e-4 \
  >"$TMP/full.out" 2>&1
check "evolve with full fine-tuning exit" $?
grep -q "policy $TMP/full/evolve-1/final/model" "$TMP/full.out"; check "full: step 2 samples with step 1's model" $?
[ -f "$TMP/full/final/model/model.safetensors" ]; check "full: final/model" $?

# keep_human: the input lists' responses stay in every pool, first, flagged human; only model ones are new.
"$TRAIN" "${EV[@]}" --output "$TMP/human" evolve.keep_human=true evolve.steps=2 evolve.iterate=1 \
  evolve.eval_prompts=null loss.sft_weight=1 loss.sft_target=human >"$TMP/human.out" 2>&1
check "evolve with keep_human exit" $?
first=$(head -1 "$TMP/human/evolve-2/pool.jsonl")
echo "$first" | grep -q '"human":\[true,true,true,true,false,false,false\]'
check "keep_human: 4 human responses first, then the 3 new ones" $?
want=$(head -1 "$TMP/prompts.jsonl" | grep -o '"responses": \[[^]]*\]' | sed 's/"responses": //; s/, /,/g')
echo "$first" | grep -qF "\"responses\":${want%]},"
check "keep_human: the human responses are the input's" $?
grep -q '"evolve/human_reward"' "$TMP/human/metrics.jsonl"; check "keep_human: evolve/human_reward" $?

# Errors, one line each.
expect_fail "evolve into a used folder" "is not empty; pass --resume" "$TRAIN" "${EV[@]}" --output "$TMP/straight"
expect_fail "evolve without rewards" "evolve.rewards: name the reward sources" \
  "$TRAIN" "${EV[@]}" --output "$TMP/e1" evolve.rewards=[]
expect_fail "evolve --resume-from" "--resume-from does not apply to an Evolve run" \
  "$TRAIN" "${EV[@]}" --output "$TMP/e2" --resume-from "$TMP/straight/evolve-1/checkpoints/step-4"
expect_fail "evolve with LoRA and model.adapter" "model.adapter: an Evolve run with LoRA" \
  "$TRAIN" "${EV[@]}" --output "$TMP/e3" "model.adapter=$FIX/llama_tiny_lora"
expect_fail "evolve with missing prompts" "no-such.jsonl" \
  "$TRAIN" "${EV[@]}" --output "$TMP/e4" "data.train=$TMP/no-such.jsonl"

finish
