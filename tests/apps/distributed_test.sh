#!/usr/bin/env bash
# Data-parallel lire-train with torch c10d (Gloo) on 127.0.0.1: two processes
# launched as torchrun does (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), each
# with batch_size B, end with the parameters of one process with batch_size
# 2B (float64, 1e-9 relative), for LiPO-lambda on ragged lists with tied
# rewards, with and without gradient accumulation; the same loss is logged;
# only rank 0 writes; lire-sample, lire-score and lire-eval on two ranks write
# what one process writes; a rank that dies makes the other fail within
# runtime.dist_timeout_s.
# Usage: distributed_test.sh BIN_DIR REPO_ROOT
set -uo pipefail
BIN=$1
ROOT=$2
# shellcheck source=tests/apps/lib.sh
source "$(dirname "$0")/lib.sh"

TRAIN="$BIN/lire-train"
# 48 lists of 2, 3 or 4 responses with tied rewards (LiPO-lambda's lambda
# weights and the label transform see ties).
python3 - "$ROOT/configs/data/tiny/train.jsonl" "$TMP/train.jsonl" "$TMP/eval.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as train, open(sys.argv[3], "w") as held:
    for i, line in enumerate(src):
        if i == 70:
            break
        out = train if i < 48 else held
        r = json.loads(line)
        k = 2 + i % 3
        rewards = r["rewards"][:k]
        if k > 2:
            rewards[1] = rewards[0]  # a tie
        out.write(json.dumps({"prompt": r["prompt"], "responses": r["responses"][:k], "rewards": rewards}) + "\n")
EOF
cat >"$TMP/dp.yaml" <<EOF
model: {path: $ROOT/tests/fixtures/hf/llama_tiny, dtype: fp64}
lora: {r: 4, alpha: 8, targets: all-linear}
data: {train: $TMP/train.jsonl, eval: $TMP/eval.jsonl}
eval: {every: 2, batch_size: 4}
loss: {name: lipo, beta: 0.5, lambda_weight: dcg}
train: {lr: 5.0e-3, lr_schedule: cosine, warmup_steps: 1, max_steps: 5, log_every: 1, max_grad_norm: 1.0}
output: {keep_last: 0}
runtime: {threads: 1, seed: 3, dist_timeout_s: 60}
EOF

port() { echo $((20000 + RANDOM % 30000)); }
# two_ranks OUT ARGS...: rank 0 and rank 1 of a 2-process job; returns non-zero when either fails.
two_ranks() {
  local out=$1 p
  shift
  p=$(port)
  RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p \
    "$TRAIN" --config "$TMP/dp.yaml" --no-progress --output "$out" "$@" >"$out.rank1.log" 2>&1 &
  local pid1=$!
  RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p \
    "$TRAIN" --config "$TMP/dp.yaml" --no-progress --output "$out" "$@" >"$out.rank0.log" 2>&1
  local rc0=$?
  wait $pid1
  local rc1=$?
  [ $rc0 -eq 0 ] && [ $rc1 -eq 0 ]
}

# max |a - b| / max |b| over every tensor of two float64 safetensors files.
compare() {
  python3 - "$1" "$2" <<'EOF'
import json, struct, sys
def read(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F64", t["dtype"]
        a, b = t["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        out[name] = struct.unpack("<%dd" % (len(raw) // 8), raw)
    return out
x, y = read(sys.argv[1]), read(sys.argv[2])
assert x.keys() == y.keys() and x
diff = max(abs(u - v) for k in x for u, v in zip(x[k], y[k]))
scale = max(abs(v) for k in y for v in y[k])
print("%.3g" % (diff / scale))
sys.exit(0 if diff <= 1e-9 * scale else 1)
EOF
}

ADAPTER=final/adapter/adapter_model.safetensors
for accum in 1 2; do
  "$TRAIN" --config "$TMP/dp.yaml" --no-progress --output "$TMP/one-$accum" train.batch_size=8 \
    train.grad_accum=$accum >"$TMP/one-$accum.log" 2>&1
  check "one process, batch 8, grad_accum $accum" $?
  two_ranks "$TMP/two-$accum" train.batch_size=4 train.grad_accum=$accum
  check "two processes, batch 4 each, grad_accum $accum" $?
  rel=$(compare "$TMP/two-$accum/$ADAPTER" "$TMP/one-$accum/$ADAPTER")
  echo "grad_accum $accum: 2 ranks vs 1, max relative difference $rel"
  check "2 x batch 4 ends where 1 x batch 8 does (grad_accum $accum; max rel. diff $rel)" $?
  # The logged losses are the global batch's.
  paste -d' ' <(grep -o '"train/loss":[-0-9.e]*' "$TMP/one-$accum/metrics.jsonl" | cut -d: -f2) \
    <(grep -o '"train/loss":[-0-9.e]*' "$TMP/two-$accum/metrics.jsonl" | cut -d: -f2) |
    awk 'NF == 2 { n++; d = $1 - $2; if (d < 0) d = -d; if (d > 1e-9) bad++ } END { exit !(n == 5 && bad == 0) }'
  check "grad_accum $accum: the same train/loss at every step" $?
  # Evaluation is shared out among the ranks (22 lists, batches of 4) and reduced.
  for key in eval/loss eval/pair_accuracy eval/ndcg eval/best_logp; do
    paste -d' ' <(grep -o "\"$key\":[-0-9.e]*" "$TMP/one-$accum/metrics.jsonl" | cut -d: -f2) \
      <(grep -o "\"$key\":[-0-9.e]*" "$TMP/two-$accum/metrics.jsonl" | cut -d: -f2) |
      awk 'NF == 2 { n++; d = $1 - $2; if (d < 0) d = -d; s = $1 < 0 ? -$1 : $1; if (d > 1e-9 * (s + 1)) bad++ }
           END { exit !(n == 4 && bad == 0) }'
    check "grad_accum $accum: the same $key at every evaluation" $?
  done
done
grep -q "gradients: summed over the ranks in 1 bucket(s), started during backward" "$TMP/two-1.rank0.log"
check "the gradient all-reduce starts during backward" $?
# With activation checkpointing a gradient arrives in parts (one backward per
# segment): the ranks sum .grad after backward, to the same weights.
two_ranks "$TMP/two-ckpt" train.batch_size=4 train.checkpointing=true
check "two processes with train.checkpointing exit" $?
grep -q "gradients: summed over the ranks after backward" "$TMP/two-ckpt.rank0.log"
check "train.checkpointing: the gradients are summed after backward" $?
rel=$(compare "$TMP/two-ckpt/$ADAPTER" "$TMP/one-1/$ADAPTER")
check "2 x batch 4 with checkpointing ends where 1 x batch 8 does ($rel)" $?
# An epoch's last step that leaves one rank without lists (48 = 3 x 14 + 6:
# rank 1 gets none of the last 6) still takes the single-process step.
"$TRAIN" --config "$TMP/dp.yaml" --no-progress --output "$TMP/one-14" train.batch_size=14 train.max_steps=4 \
  >/dev/null 2>&1
two_ranks "$TMP/two-7" train.batch_size=7 train.max_steps=4
check "two ranks with an empty last micro-batch exit" $?
rel=$(compare "$TMP/two-7/$ADAPTER" "$TMP/one-14/$ADAPTER")
check "2 x batch 7 ends where 1 x batch 14 does across the epoch end ($rel)" $?
grep -q "data parallel: 2 ranks (gloo)" "$TMP/two-1.rank0.log"; check "rank 0 logs the job" $?
[ "$(grep -vc "rank 1 of 2 (local rank 1, gloo" "$TMP/two-1.rank1.log")" -eq 0 ]; check "rank 1 logs only that it joined" $?
grep -q '"world_size": 2' "$TMP/two-1/run.json"; check "run.json records the world size" $?
[ "$(ls "$TMP/two-1/checkpoints")" = "step-5" ]; check "one writer: rank 0's checkpoint" $?

# Resume with the same world size: a 2-rank run that lost its last checkpoint
# and final/ continues from step 4 to the same weights. LoRA dropout on: each
# rank's generator state is in the checkpoint (rank 1's too), so both ranks'
# dropout streams continue where they were.
two_ranks "$TMP/straight" train.batch_size=4 output.save_every=2 train.max_steps=6 lora.dropout=0.2
check "2-rank run with checkpoints exit" $?
cp -r "$TMP/straight" "$TMP/cut"
rm -rf "$TMP/cut/checkpoints/step-6" "$TMP/cut/final"
two_ranks "$TMP/cut" train.batch_size=4 output.save_every=2 train.max_steps=6 lora.dropout=0.2 --resume
check "2-rank --resume exit" $?
grep -q "resumed from .*step-4" "$TMP/cut.rank0.log"; check "rank 0 resumed from step 4" $?
rel=$(compare "$TMP/cut/$ADAPTER" "$TMP/straight/$ADAPTER")
[ "$rel" = "0" ]; check "2-rank resume ends with the uninterrupted weights (max rel. diff $rel)" $?

# lire-train --nproc 2 launches the two ranks itself: the same run as above.
"$TRAIN" --config "$TMP/dp.yaml" --no-progress --output "$TMP/nproc" --nproc 2 train.batch_size=4 \
  >"$TMP/nproc.log" 2>&1
check "lire-train --nproc 2 exit" $?
rel=$(compare "$TMP/nproc/$ADAPTER" "$TMP/two-1/$ADAPTER"); check "--nproc 2 = two torchrun-style ranks ($rel)" $?
RANK=0 WORLD_SIZE=1 "$TRAIN" --config "$TMP/dp.yaml" --output "$TMP/nested" --nproc 2 >/dev/null 2>"$TMP/nested.err"
[ $? -ne 0 ] && grep -q "use one launcher" "$TMP/nested.err"; check "--nproc under another launcher is refused" $?
mkdir -p "$TMP/launch"
TMPDIR="$TMP/launch" "$TRAIN" --config "$TMP/dp.yaml" --output "$TMP/failing" --nproc 2 \
  "data.train=$TMP/missing.jsonl" >/dev/null 2>"$TMP/failing.err"
[ $? -ne 0 ] && grep -q "missing.jsonl" "$TMP/failing.err"; check "--nproc fails when its ranks fail" $?
# Both ranks fail on the missing file; the launcher prints the line once.
[ "$(grep -c "error: .*missing.jsonl" "$TMP/failing.err")" -eq 1 ]
check "--nproc: the ranks' identical error printed once ($(grep -c "error:" "$TMP/failing.err") lines)" $?
[ -z "$(ls -A "$TMP/launch")" ]; check "--nproc removes its folder of error lines" $?

# lire-sample and lire-score shard their records across ranks; rank 0 merges
# the shards in input order. With one prompt a batch the computation is the
# same as in one process, so the files are byte for byte the same; with
# larger batches the token ids still are.
head -13 "$ROOT/configs/data/tiny/train.jsonl" >"$TMP/prompts.jsonl"
FIX="$ROOT/tests/fixtures/hf/llama_tiny"
RULE=('rewards.short={type: length, max_chars: 24}' model.dtype=fp32 runtime.threads=1)
# ranks2 CMD ARGS...: CMD as rank 0 and rank 1 of a 2-process job.
ranks2() {
  local p
  p=$(port)
  RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p "$@" >/dev/null 2>"$TMP/rank1.err" &
  local pid1=$!
  RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p "$@" >"$TMP/rank0.out" 2>"$TMP/rank0.err"
  local rc0=$?
  wait $pid1
  local rc1=$?
  [ $rc0 -eq 0 ] && [ $rc1 -eq 0 ]
}
for bp in 1 4; do
  SAMPLE=("$BIN/lire-sample" --data "$TMP/prompts.jsonl" --policy "$FIX" --num-samples 2 --max-new-tokens 6 --seed 3
    --reward short --no-progress "sample.batch_prompts=$bp" "${RULE[@]}")
  "${SAMPLE[@]}" --output "$TMP/pool1-$bp.jsonl" >/dev/null 2>&1
  ranks2 "${SAMPLE[@]}" --output "$TMP/pool2-$bp.jsonl"
  check "lire-sample on 2 ranks (batch_prompts $bp) exit" $?
  grep -q "sampled 13 prompts (26 responses" "$TMP/rank0.out"; check "rank 0 reports the job's totals" $?
done
cmp -s "$TMP/pool1-1.jsonl" "$TMP/pool2-1.jsonl"; check "lire-sample: 2 ranks write the file 1 process writes" $?
ids() { python3 -c 'import json,sys; [print(json.loads(l)["responses_ids"]) for l in open(sys.argv[1])]' "$1"; }
cmp -s <(ids "$TMP/pool1-4.jsonl") <(ids "$TMP/pool2-4.jsonl"); check "lire-sample: the same pools at batch 4" $?
! ls "$TMP" | grep -q 'rank[0-9]-of\|\.partial'; check "no shard or partial file left" $?
SCORE=("$BIN/lire-score" --data "$TMP/pool1-1.jsonl" --policy "$FIX" --reward short --batch-size 1 --overwrite
  --no-progress "${RULE[@]}")
"${SCORE[@]}" --output "$TMP/scored1.jsonl" >/dev/null 2>&1
ranks2 "${SCORE[@]}" --output "$TMP/scored2.jsonl"; check "lire-score on 2 ranks exit" $?
cmp -s "$TMP/scored1.jsonl" "$TMP/scored2.jsonl"; check "lire-score: 2 ranks write the file 1 process writes" $?
# lire-eval: prompts shared out, rank 0 gathers them and writes the same report.
EVAL=("$BIN/lire-eval" --data "$TMP/prompts.jsonl" --policy "$FIX" --reference "$FIX" --baseline "$TMP/pool1-1.jsonl"
  --max-new-tokens 6 --strategy sample --max-sequences 1 --no-progress sample.batch_prompts=1 "${RULE[@]}")
"${EVAL[@]}" --output "$TMP/eval1" >/dev/null 2>&1
ranks2 "${EVAL[@]}" --output "$TMP/eval2"; check "lire-eval on 2 ranks exit" $?
for f in report.json report.md examples.jsonl; do
  cmp -s "$TMP/eval1/$f" "$TMP/eval2/$f"; check "lire-eval: 2 ranks write the $f of 1 process" $?
done
grep -q "KL(pi || pi_ref)" "$TMP/rank0.out"; check "rank 0 prints the report" $?
! ls "$TMP" | grep -q 'eval2.rank'; check "lire-eval leaves no shard" $?

# A rank that dies: the other stops with the timeout error instead of hanging.
# Steps sleep 50 ms (LIRE_TEST_STEP_PAUSE_MS): 200 steps outlast the kill at 4 s on any machine.
export LIRE_TEST_STEP_PAUSE_MS=50
sed -i 's/dist_timeout_s: 60/dist_timeout_s: 5/' "$TMP/dp.yaml"
p=$(port)
RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p "$TRAIN" --config "$TMP/dp.yaml" --no-progress \
  --output "$TMP/dead" train.max_steps=200 >/dev/null 2>&1 &
victim=$!
(sleep 4; kill -9 $victim 2>/dev/null) &
start=$(date +%s)
RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p "$TRAIN" --config "$TMP/dp.yaml" --no-progress \
  --output "$TMP/dead" train.max_steps=200 >"$TMP/dead.out" 2>"$TMP/dead.err"
rc=$?
wait
[ $rc -ne 0 ] && grep -q "another rank died or did not join within runtime.dist_timeout_s = 5 s" "$TMP/dead.err"
check "a killed rank makes the other fail with the timeout error (exit $rc)" $?
[ $(($(date +%s) - start)) -lt 60 ]; check "within about the timeout" $?
unset LIRE_TEST_STEP_PAUSE_MS

finish
