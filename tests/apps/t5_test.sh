#!/usr/bin/env bash
# T5 as a first-class policy in every command, end to end on the tiny T5 v1.1
# fixture (given a sentencepiece model and T5Tokenizer flags here):
# lire-sample (every strategy), lire-score (reference log-probs checked
# against lire-sample's own), lire-train with LoRA (a PEFT SEQ_2_SEQ_LM
# adapter), lire-merge of that adapter (sampling the merged folder = sampling
# base + adapter), lire-eval with KL against the base, Evolve on a T5 policy,
# and one-line errors for mixed architectures.
# Usage: t5_test.sh BIN_DIR REPO_ROOT
set -uo pipefail
BIN=$1
ROOT=$2
# shellcheck source=tests/apps/lib.sh
source "$(dirname "$0")/lib.sh"

FIX="$ROOT/tests/fixtures/hf"
T5="$TMP/t5"
mkdir -p "$T5"
cp "$FIX/t5_tiny/config.json" "$FIX/t5_tiny/model.safetensors" "$T5/"
cp "$FIX/llama_tiny/tokenizer.model" "$T5/spiece.model"
echo '{"tokenizer_class": "T5Tokenizer"}' >"$T5/tokenizer_config.json"
head -12 "$ROOT/configs/data/tiny/train.jsonl" >"$TMP/prompts.jsonl"
COMMON=(model.dtype=fp32 runtime.threads=1 'rewards.short={type: length, max_chars: 24}')

# lire-sample: every strategy decodes a T5 folder.
for strategy in greedy sample beam diverse-beam; do
  extra=()
  [ "$strategy" = diverse-beam ] && extra=(sample.num_beams=4 sample.num_beam_groups=2 sample.diversity_penalty=0.5)
  [ "$strategy" = beam ] && extra=(sample.num_beams=3)
  n=2
  [ "$strategy" = greedy ] && n=1
  "$BIN/lire-sample" --data "$TMP/prompts.jsonl" --output "$TMP/pool-$strategy.jsonl" --policy "$T5" \
    --strategy "$strategy" --num-samples $n --max-new-tokens 8 --seed 3 --reward short --no-progress \
    "${COMMON[@]}" "${extra[@]}" >"$TMP/sample.out" 2>&1
  check "lire-sample --strategy $strategy on T5 exit" $?
  [ "$(wc -l <"$TMP/pool-$strategy.jsonl")" -eq 12 ]; check "lire-sample $strategy: a pool per prompt" $?
done
grep -q "T5 (v1.1)" "$TMP/sample.out"; check "lire-sample logs the architecture" $?
# A response that ended with EOS carries T5's EOS id (1) last; token ids and
# text come from the T5 tokenizer.
python3 - "$TMP/pool-sample.jsonl" <<'EOF'
import json, sys
records = [json.loads(l) for l in open(sys.argv[1])]
ok = all(len(r["responses"]) == 2 and len(r["responses_ids"]) == 2 and len(r["sample_logps"]) == 2 for r in records)
for r in records:
    for ids, finish in zip(r["responses_ids"], r["finish"]):
        ok = ok and ((ids[-1] == 1) == (finish == "eos")) and all(0 <= i < 512 for i in ids)
sys.exit(0 if ok else 1)
EOF
check "T5 pools: ids end with EOS 1 exactly when finished by EOS" $?

# lire-score: T5 reference log-probs of the sampled token ids equal the
# log-probs lire-sample reported while sampling (always at T = 1, unfiltered).
python3 - "$TMP/pool-sample.jsonl" "$TMP/ids.jsonl" <<'EOF'
import json, sys
with open(sys.argv[2], "w") as out:
    for l in open(sys.argv[1]):
        r = json.loads(l)
        out.write(json.dumps({"id": r["id"], "prompt": r["prompt"], "responses_ids": r["responses_ids"],
                              "sample_logps": r["sample_logps"]}) + "\n")
EOF
"$BIN/lire-score" --data "$TMP/ids.jsonl" --output "$TMP/scored.jsonl" --policy "$T5" --no-progress \
  model.dtype=fp32 >/dev/null 2>&1
check "lire-score --policy T5 exit" $?
python3 - "$TMP/scored.jsonl" <<'EOF'
import json, sys
worst = max(abs(a - b) for l in open(sys.argv[1]) for r in [json.loads(l)]
            for a, b in zip(r["ref_logps"], r["sample_logps"]))
sys.exit(0 if worst < 1e-3 else 1)
EOF
check "T5 ref_logps equal the sampler's log-probs" $?

# lire-train: LIRE with LoRA on q, v of the T5 policy, from a sampled pool.
"$BIN/lire-train" --config "$ROOT/configs/tiny.yaml" "model.path=$T5" "data.train=$TMP/pool-sample.jsonl" data.eval=null \
  output.keep_best=null train.max_steps=3 "lora.targets=[q,v]" --threads 1 --output "$TMP/run" \
  >"$TMP/train.out" 2>&1
check "lire-train on a T5 folder exit" $?
grep -q '"task_type": "SEQ_2_SEQ_LM"' "$TMP/run/final/adapter/adapter_config.json"
check "the T5 adapter is a PEFT SEQ_2_SEQ_LM adapter" $?

# lire-merge: base + adapter -> a T5 folder that samples as base + adapter does.
"$BIN/lire-merge" --model "$T5" --adapter "$TMP/run/final/adapter" --output "$TMP/merged" >/dev/null 2>&1
check "lire-merge of a T5 adapter exit" $?
GREEDY=(--data "$TMP/prompts.jsonl" --strategy greedy --max-new-tokens 8 --no-progress model.dtype=fp32)
"$BIN/lire-sample" "${GREEDY[@]}" --output "$TMP/g-adapter.jsonl" --policy "$T5" --adapter "$TMP/run/final/adapter" \
  >/dev/null 2>&1
"$BIN/lire-sample" "${GREEDY[@]}" --output "$TMP/g-merged.jsonl" --policy "$TMP/merged" >/dev/null 2>&1
cmp -s <(python3 -c 'import json,sys; [print(json.loads(l)["responses_ids"]) for l in open(sys.argv[1])]' "$TMP/g-adapter.jsonl") \
  <(python3 -c 'import json,sys; [print(json.loads(l)["responses_ids"]) for l in open(sys.argv[1])]' "$TMP/g-merged.jsonl")
check "the merged T5 samples what base + adapter samples" $?

# lire-eval: the trained T5 vs the base's greedy responses, with KL to the base.
"$BIN/lire-sample" "${GREEDY[@]}" --output "$TMP/base.jsonl" --policy "$T5" >/dev/null 2>&1
"$BIN/lire-eval" --data "$TMP/prompts.jsonl" --output "$TMP/report" --policy "$T5" --adapter "$TMP/run/final/adapter" \
  --baseline "$TMP/base.jsonl" --reference "$T5" --strategy sample --max-new-tokens 8 --no-progress \
  "${COMMON[@]}" >"$TMP/eval.out" 2>&1
check "lire-eval with a T5 policy and reference exit" $?
grep -q "KL(pi || pi_ref)" "$TMP/eval.out"; check "lire-eval reports KL for T5" $?
expect_fail "lire-eval mixed architectures" "a llama model, and the policy is a t5 model" \
  "$BIN/lire-eval" --data "$TMP/prompts.jsonl" --output "$TMP/r2" --policy "$T5" --reference "$FIX/llama_tiny" \
  --baseline "$TMP/base.jsonl" --max-new-tokens 4 --no-progress "${COMMON[@]}"

# Evolve on a T5 policy: sample, score, train, twice.
"$BIN/lire-train" --config "$ROOT/configs/tiny.yaml" "model.path=$T5" "data.train=$TMP/prompts.jsonl" data.eval=null \
  output.keep_best=null loss.name=lire evolve.steps=2 evolve.iterate=1 evolve.samples=2 'evolve.rewards=[short]' \
  sample.max_new_tokens=6 "${COMMON[@]}" --output "$TMP/evolve" >"$TMP/evolve.out" 2>&1
check "Evolve with a T5 policy exit" $?
[ -f "$TMP/evolve/evolve-2/pool.jsonl" ] && [ -f "$TMP/evolve/final/adapter/adapter_model.safetensors" ]
check "Evolve on T5 writes both steps' pools and the final adapter" $?

finish
