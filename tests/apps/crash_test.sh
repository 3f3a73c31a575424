#!/usr/bin/env bash
# Crash safety of lire-train (docs/robustness.md#crash-safety): SIGKILL at
# random points of a run that checkpoints every step (and inside checkpoint
# writes and deletions, held open by the test-only LIRE_TEST_CHECKPOINT_PAUSE_MS;
# LIRE_TEST_STEP_PAUSE_MS slows the runs that must be stopped mid-way)
# never leaves an incomplete checkpoint, the newest one loads, and the same
# command with --resume ends with the adapter of an uninterrupted run, bit for
# bit; SIGTERM / SIGINT save the step reached and exit 128 + signal (also on
# two ranks); an output folder that takes no file fails at the start; a write
# that fails (file size limit: EFBIG; a full tmpfs: ENOSPC) names the file
# and leaves the previous checkpoints as they were.
# Usage: crash_test.sh BIN_DIR REPO_ROOT
set -uo pipefail
BIN=$1
ROOT=$2
# shellcheck source=tests/apps/lib.sh
source "$(dirname "$0")/lib.sh"

TRAIN="$BIN/lire-train"
FIX="$ROOT/tests/fixtures/hf"
# 10 steps of 4 lists, LoRA with dropout (the generator state must survive a
# resume), a checkpoint every step, the newest 2 kept.
RUN=(--config "$ROOT/configs/tiny.yaml" "model.path=$FIX/llama_tiny" "data.train=$ROOT/configs/data/tiny/train.jsonl"
  "data.eval=$ROOT/configs/data/tiny/eval.jsonl" eval.max_lists=4 eval.every=0 eval.at_start=false
  output.keep_best=null train.max_steps=10 train.batch_size=2 train.grad_accum=2 train.log_every=1
  output.save_every=1 output.keep_last=2 lora.dropout=0.1 --threads 1 --no-progress)
ADAPTER=final/adapter/adapter_model.safetensors

"$TRAIN" "${RUN[@]}" --output "$TMP/straight" >"$TMP/straight.log" 2>&1
check "uninterrupted run exit" $?
same_as_straight() { cmp -s "$TMP/straight/$ADAPTER" "$1/$ADAPTER"; }

# complete CKPT: every file of a LoRA checkpoint is there.
complete() {
  local f
  for f in adapter/adapter_config.json adapter/adapter_model.safetensors optimizer.pt rng.safetensors config.yaml \
    trainer_state.json; do
    [ -s "$1/$f" ] || return 1
  done
}
# all_complete RUN: every checkpoints/step-N folder of RUN is complete.
all_complete() {
  local d
  for d in "$1"/checkpoints/step-*; do
    [ -d "$d" ] || continue
    case $d in *.tmp.*) continue ;; esac
    complete "$d" || { echo "incomplete checkpoint $d"; return 1; }
  done
}
newest() {
  local n
  n=$(ls "$1/checkpoints" 2>/dev/null | grep -E '^step-[0-9]+$' | sort -t- -k2 -n | tail -1)
  [ -n "$n" ] && echo "$1/checkpoints/$n"
}
# wait_for CONDITION...: polls every 20 ms, up to 60 s.
wait_for() {
  local i
  for i in $(seq 1 3000); do
    "$@" && return 0
    sleep 0.02
  done
  return 1
}
has_tmp() { ls "$1/checkpoints" 2>/dev/null | grep -q "$2"; }
has_complete_tmp() { ls "$1"/checkpoints/step-*.tmp.[0-9]*/trainer_state.json >/dev/null 2>&1; }
logged() { grep -q "$2" "$1" 2>/dev/null; }
# finish_run DIR NAME: the same command with --resume; the newest checkpoint
# must be the one it resumes from, and the run must end where the
# uninterrupted one did.
finish_run() {
  local dir=$1 name=$2 want
  want=$(newest "$dir")
  "$TRAIN" "${RUN[@]}" --output "$dir" --resume >"$dir.resume.log" 2>&1
  check "$name: --resume exit" $?
  if [ -n "$want" ]; then
    grep -q "resumed from $want " "$dir.resume.log"
    check "$name: resumed from the newest checkpoint $(basename "$want")" $?
  fi
  same_as_straight "$dir"
  check "$name: the uninterrupted run's adapter, bit for bit" $?
}

# Signals and kills below land mid-run on a machine of any speed: runs that
# must be stopped before their end sleep STEP_PAUSE ms after each step
# (LIRE_TEST_STEP_PAUSE_MS; the results do not depend on it).
STEP_PAUSE=100

# 1. SIGKILL at random times: every launch is the same command (--resume on a
# folder without checkpoints starts the run), killed 0-200 ms after its first
# save, twice, then run to the end. Checkpoint writes pause 0-40 ms. With the
# step pause, each launch gets at most 2-3 steps past its first save (plus
# the polling latency), so neither kill can come after the run's end.
in_save=0
for seed in 1 2 3 4; do
  RANDOM=$seed
  dir="$TMP/random-$seed"
  for round in 1 2; do
    pause=$((RANDOM % 40))
    delay=$((RANDOM % 200))
    LIRE_TEST_STEP_PAUSE_MS=$STEP_PAUSE LIRE_TEST_CHECKPOINT_PAUSE_MS=$pause \
      "$TRAIN" "${RUN[@]}" --output "$dir" --resume >"$dir.$round.log" 2>&1 &
    pid=$!
    wait_for logged "$dir.$round.log" "checkpoint .* saved"
    sleep "$(printf '0.%03d' "$delay")"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    has_tmp "$dir" '\.tmp\.' && in_save=$((in_save + 1))
    all_complete "$dir"
    check "seed $seed, kill $round (${delay} ms after a save): every checkpoint left is complete" $?
  done
  [ ! -e "$dir/final" ]; check "seed $seed: the killed runs did not finish" $?
  finish_run "$dir" "seed $seed"
done
echo "random kills: $in_save of 8 left a temporary folder (killed inside a save or a deletion)"

# 2. SIGKILL inside a checkpoint write, in each window the pause holds open:
# before the files are written, when they all are but the folder is not yet
# renamed, and while an old checkpoint is being deleted.
for window in started written deleting; do
  dir="$TMP/window-$window"
  LIRE_TEST_CHECKPOINT_PAUSE_MS=700 "$TRAIN" "${RUN[@]}" --output "$dir" --resume >"$dir.log" 2>&1 &
  pid=$!
  wait_for logged "$dir.log" "step 3/"
  case $window in
    started) wait_for has_tmp "$dir" 'step-[0-9]*\.tmp\.[0-9]' ;;
    written) wait_for has_complete_tmp "$dir" ;;
    deleting) wait_for has_tmp "$dir" '\.tmp\.del\.' ;;
  esac
  check "a run paused in the '$window' window" $?
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  all_complete "$dir"; check "killed in the '$window' window: every checkpoint left is complete" $?
  finish_run "$dir" "killed in the '$window' window"
  ! has_tmp "$dir" '\.tmp\.'; check "killed in the '$window' window: the next saves removed the temporary folder" $?
done

# 3. SIGTERM: the checkpoint of the step reached, exit 143, and a resume from it.
# (Its run folder, copied, serves in 7.)
STOP=(output.save_every=0)
dir="$TMP/term"
LIRE_TEST_STEP_PAUSE_MS=$STEP_PAUSE "$TRAIN" "${RUN[@]}" "${STOP[@]}" --output "$dir" --resume >"$dir.log" 2>&1 &
pid=$!
wait_for logged "$dir.log" "step 4/"
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ]; check "SIGTERM: exit 143 (got $rc)" $?
step=$(sed -n 's/.*stopped at step \([0-9]*\) of 10 by signal 15.*/\1/p' "$dir.log")
[ -n "$step" ] && [ "$step" -ge 4 ] && [ "$step" -lt 10 ]; check "SIGTERM: 'stopped at step N' logged (N = $step)" $?
[ "$(newest "$dir")" = "$dir/checkpoints/step-$step" ] && complete "$dir/checkpoints/step-$step" &&
  grep -q "\"step\": $step," "$dir/checkpoints/step-$step/trainer_state.json"
check "SIGTERM: the checkpoint of step $step, complete" $?
[ ! -e "$dir/final" ]; check "SIGTERM: no final/" $?
cp -r "$dir" "$TMP/full"
full_step=$step
finish_run "$dir" "SIGTERM"

# 4. SIGINT, then SIGTERM and SIGINT again while the stop's checkpoint is
# being written: ignored; exit 130 with that checkpoint complete.
dir="$TMP/int"
LIRE_TEST_STEP_PAUSE_MS=$STEP_PAUSE LIRE_TEST_CHECKPOINT_PAUSE_MS=500 "$TRAIN" "${RUN[@]}" "${STOP[@]}" --output "$dir" --resume >"$dir.log" 2>&1 &
pid=$!
wait_for logged "$dir.log" "step 2/"
kill -INT $pid
wait_for has_tmp "$dir" 'step-[0-9]*\.tmp\.[0-9]'
check "SIGINT: the stop's checkpoint is being written" $?
kill -TERM $pid
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ]; check "SIGINT, and two more signals during the save: exit 130 (got $rc)" $?
step=$(sed -n 's/.*stopped at step \([0-9]*\) of 10 by signal 2;.*/\1/p' "$dir.log")
[ -n "$step" ] && complete "$dir/checkpoints/step-$step" && ! has_tmp "$dir" '\.tmp\.'
check "SIGINT: the checkpoint of step $step is complete, no temporary folder" $?
finish_run "$dir" "SIGINT"

# 5. Two ranks (lire-train --nproc 2): SIGTERM to the launcher reaches both
# ranks, which stop at the same step; rank 0 saves; the launcher exits 143; the
# same command with --resume ends with the uninterrupted 2-rank adapter.
# Without dropout: only rank 0's generator state is saved, so the other ranks'
# dropout streams do not continue exactly after a multi-rank resume (a
# limitation of that resume, not of stopping).
TWO=("${RUN[@]}" "${STOP[@]}" train.batch_size=1 lora.dropout=0.0 --nproc 2)
"$TRAIN" "${TWO[@]}" --output "$TMP/two-straight" >"$TMP/two-straight.log" 2>&1
check "2 ranks, uninterrupted: exit" $?
dir="$TMP/two"
LIRE_TEST_STEP_PAUSE_MS=$STEP_PAUSE "$TRAIN" "${TWO[@]}" --output "$dir" --resume >"$dir.log" 2>&1 &
pid=$!
wait_for logged "$dir.log" "step 3/"
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ]; check "2 ranks, SIGTERM to the launcher: exit 143 (got $rc)" $?
steps=$(sed -n 's/.*stopped at step \([0-9]*\) of 10.*/\1/p' "$dir.log" | sort -u)
[ "$(grep -c "stopped at step" "$dir.log")" -eq 2 ] && [ "$(echo "$steps" | wc -l)" -eq 1 ]
check "2 ranks: both stopped, at the same step ($steps)" $?
[ "$(ls "$dir/checkpoints")" = "step-$steps" ] && complete "$dir/checkpoints/step-$steps"
check "2 ranks: one complete checkpoint, of that step" $?
"$TRAIN" "${TWO[@]}" --output "$dir" --resume >"$dir.resume.log" 2>&1
check "2 ranks: --resume exit" $?
cmp -s "$TMP/two-straight/$ADAPTER" "$dir/$ADAPTER"
check "2 ranks: SIGTERM + --resume gives the uninterrupted adapter, bit for bit" $?

# 6. An output folder that takes no file: one line at the start.
touch "$TMP/a-file"
expect_fail "--output under a regular file" "cannot create the folder" \
  "$TRAIN" "${RUN[@]}" --output "$TMP/a-file/run"
mkdir "$TMP/readonly"
if [ "$(id -u)" -ne 0 ]; then
  chmod 555 "$TMP/readonly"
  expect_fail "read-only --output (chmod 555)" "--output $TMP/readonly is not writable" \
    "$TRAIN" "${RUN[@]}" --output "$TMP/readonly"
  chmod 755 "$TMP/readonly"
elif chattr +i "$TMP/readonly" 2>/dev/null; then
  # Root ignores permissions; an immutable folder takes no file, even from root.
  expect_fail "read-only --output (chattr +i)" "--output $TMP/readonly is not writable" \
    "$TRAIN" "${RUN[@]}" --output "$TMP/readonly"
  chattr -i "$TMP/readonly"
else
  echo "SKIP: read-only --output (root without chattr +i: nothing here makes a folder read-only for root)"
fi

# 7. A write that fails at save time (a file size limit: write() fails with
# EFBIG once SIGXFSZ is ignored, as on a full disk with ENOSPC): one line
# naming the file; the checkpoints are as they were, no temporary folder; the
# run then resumes from them to the uninterrupted adapter.
before=$(cd "$TMP/full/checkpoints" && ls && cat ./*/trainer_state.json | md5sum)
limit=$(($(stat -c %s "$TMP/full/checkpoints/step-$full_step/adapter/adapter_model.safetensors") / 1024 - 1))
big=$(find "$TMP/full" -maxdepth 1 -type f -printf '%s\n' | sort -n | tail -1)
[ $((big / 1024 + 4)) -lt "$limit" ]; check "the size limit ($limit KiB) lets the run's small files grow" $?
limited() { (trap '' XFSZ; ulimit -f "$limit"; exec "$@"); }
expect_fail "a checkpoint write over the size limit" "adapter_model.safetensors': File too large" \
  limited "$TRAIN" "${RUN[@]}" "${STOP[@]}" --output "$TMP/full" --resume
after=$(cd "$TMP/full/checkpoints" && ls && cat ./*/trainer_state.json | md5sum)
[ "$before" = "$after" ]; check "the failed save left the checkpoints as they were" $?
! has_tmp "$TMP/full" '\.tmp\.' && [ ! -e "$TMP/full/final" ]; check "no temporary folder, no final/" $?
finish_run "$TMP/full" "after the failed save"
# A kill while final/ was being replaced: the old folder renamed aside, the new
# one not yet in place. --resume writes final/ again and clears the leftovers.
mv "$TMP/full/final" "$TMP/full/final.old.999"
mkdir -p "$TMP/full/final.tmp.998/adapter"
"$TRAIN" "${RUN[@]}" --output "$TMP/full" --resume >/dev/null 2>&1
check "final/ replaced by a killed writer: --resume exit" $?
same_as_straight "$TMP/full" && [ -z "$(ls -d "$TMP"/full/final.* 2>/dev/null)" ]
check "final/ written again, no final.tmp.* / final.old.* left" $?

# 8. A disk that really fills up (ENOSPC): a 700 KiB tmpfs holds two
# checkpoints of about 285 KB and the run's small files, not a third one
# being written. One line naming the file; the two checkpoints stay complete
# and unchanged; no temporary folder; once the disk has room the same command
# with --resume ends with the uninterrupted adapter. Needs root (mount).
mkdir -p "$TMP/disk"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=700k lire-test-disk "$TMP/disk" 2>/dev/null; then
  trap 'umount "$TMP/disk" 2>/dev/null; rm -rf "$TMP"' EXIT
  dir="$TMP/disk/run"
  "$TRAIN" "${RUN[@]}" --output "$dir" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  [ $rc -ne 0 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "No space left on device" "$TMP/err"
  check "a full disk: exit $rc with one line naming the cause ($(head -c 200 "$TMP/err"))" $?
  grep -qE "/run/(checkpoints|final|metrics)" "$TMP/err"; check "a full disk: the line names the file" $?
  kept=$(ls "$dir/checkpoints" | grep -cE '^step-[0-9]+$')
  [ "$kept" -ge 1 ] && all_complete "$dir"; check "a full disk: $kept complete checkpoints left" $?
  ! has_tmp "$dir" '\.tmp\.'; check "a full disk: no temporary folder left" $?
  before=$(cd "$dir/checkpoints" && ls && cat ./*/trainer_state.json ./*/adapter/adapter_model.safetensors | md5sum)
  "$TRAIN" "${RUN[@]}" --output "$dir" --resume >/dev/null 2>&1
  after=$(cd "$dir/checkpoints" && ls && cat ./*/trainer_state.json ./*/adapter/adapter_model.safetensors | md5sum)
  [ "$before" = "$after" ]; check "a full disk: a --resume that fails again changes no checkpoint" $?
  mount -o remount,size=8m "$TMP/disk"
  finish_run "$dir" "a full disk, then room"
  umount "$TMP/disk"
else
  echo "SKIP: a full disk (mounting a small tmpfs needs root; the write-failure path is tested with EFBIG above)"
fi

finish
