#!/usr/bin/env bash
# The bad-input catalogue (docs/errors.md) end to end: one case per entry,
# named by its id. Each feeds one bad input (command line, config, data,
# tokenizer, model folder, safetensors, adapter, checkpoint, environment,
# output folder) to a real command and asserts one stderr line holding the
# catalogued message, and the catalogued exit status (1 = error, 2 = usage
# error; never outside 1..125). The bad inputs are made here from the tiny HF
# fixtures. The last check: the ids run here are exactly those of the catalogue.
# Usage: errors_test.sh BIN_DIR REPO_ROOT
set -uo pipefail
BIN=$1
ROOT=$2
# shellcheck source=tests/apps/lib.sh
source "$(dirname "$0")/lib.sh"

FIX="$ROOT/tests/fixtures/hf"
TRAIN="$BIN/lire-train"
SAMPLE="$BIN/lire-sample"
SCORE="$BIN/lire-score"
EVAL="$BIN/lire-eval"
MERGE="$BIN/lire-merge"
LOSS="$BIN/lire-loss"
ran_ids=()

# Runs a command and keeps its exit status in $TMP/rc (expect_fail runs it).
record_rc() {
  "$@"
  local rc=$?
  echo "$rc" >"$TMP/rc"
  return $rc
}
# err ID STATUS WANT CMD...: one stderr line holding WANT, exit status STATUS
# (1 or 2; both inside 1..125, which is checked on its own too).
err() {
  local id=$1 status=$2 want=$3
  shift 3
  ran_ids+=("$id")
  echo 255 >"$TMP/rc"
  expect_fail "$id" "$want" record_rc "$@"
  local rc
  rc=$(cat "$TMP/rc")
  [ "$rc" -ge 1 ] && [ "$rc" -le 125 ] && [ "$rc" -eq "$status" ]
  check "$id: exit status $rc (catalogue: $status, always within 1..125)" $?
}
# A fresh, not yet existing output path (runs in $(...): no counter survives).
fresh() { mktemp -u -p "$TMP" out-XXXXXX; }

# ------------------------------------------------------------------ inputs
DATA="$TMP/lists.jsonl"  # three good lists of the tiny training set
head -3 "$ROOT/configs/data/tiny/train.jsonl" >"$DATA"
PROMPTS="$TMP/prompts.jsonl"
cp "$DATA" "$PROMPTS"
LOGPS="$ROOT/configs/examples/scored-lists.jsonl"
TINY=(--config "$ROOT/configs/tiny.yaml" "model.path=$FIX/llama_tiny" "data.train=$DATA" data.eval=null
      output.keep_best=null train.max_steps=1 --threads 1 --no-progress)
RULE=('rewards.short={type: length, max_chars: 12}')

# bad_data NAME LINE: the three good lists, then LINE (line 4)
bad_data() {
  { cat "$DATA"; echo "$2"; } >"$TMP/$1.jsonl"
  echo "$TMP/$1.jsonl"
}
# model_copy NAME [SOURCE]: a copy of a fixture folder to break
model_copy() {
  rm -rf "${TMP:?}/$1"
  cp -r "$FIX/${2:-llama_tiny}" "$TMP/$1"
  echo "$TMP/$1"
}
# edit_json FILE PYTHON: rewrites a JSON object file; PYTHON edits `c`
edit_json() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
path, code = sys.argv[1], sys.argv[2]
c = json.load(open(path))
exec(code)
json.dump(c, open(path, "w"))
EOF
}
# edit_safetensors FILE WHAT [ARG]: hostile and corrupt variants of a valid file
edit_safetensors() {
  python3 - "$@" <<'EOF'
import json, struct, sys
path, what = sys.argv[1], sys.argv[2]
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
names = sorted(k for k in header if k != "__metadata__")

def write(h, d, length=None):
    hb = json.dumps(h).encode()
    open(path, "wb").write(struct.pack("<Q", len(hb) if length is None else length) + hb + d)

def without(drop):  # a valid file without the tensors `drop` says to leave out
    out, blobs, offset = {}, [], 0
    for k in names:
        if drop(k):
            continue
        b, e = header[k]["data_offsets"]
        out[k] = dict(header[k], data_offsets=[offset, offset + e - b])
        offset += e - b
        blobs.append(data[b:e])
    write(out, b"".join(blobs))

if what == "tiny":            # shorter than the 8-byte length prefix
    open(path, "wb").write(b"abc")
elif what == "past-eof":      # header length beyond the end of the file
    write(header, data, length=700000)  # the file holds 634,396 bytes
elif what == "not-json":
    open(path, "wb").write(struct.pack("<Q", 5) + b"hello")
elif what == "truncate":      # the last 100 bytes of data lost
    open(path, "wb").write(raw[:-100])
elif what == "overlap":       # a tensor's bytes inside another's
    a, b = names[0], names[1]
    begin = header[a]["data_offsets"][0] + 4
    size = header[b]["data_offsets"][1] - header[b]["data_offsets"][0]
    header[b]["data_offsets"] = [begin, begin + size]
    write(header, data)
elif what == "dtype":         # a dtype the format does not have
    header[sys.argv[3]]["dtype"] = "Q4"
    write(header, data)
elif what == "f16":           # F32 bytes declared F16: the size no longer fits
    header[sys.argv[3]]["dtype"] = "F16"
    write(header, data)
elif what == "i32":           # F32 bytes declared I32: the sizes fit, the values are not weights
    header[sys.argv[3]]["dtype"] = "I32"
    write(header, data)
elif what == "hole":          # an entry removed, its bytes left behind
    del header[sys.argv[3]]
    write(header, data)
elif what == "drop":          # a tensor removed cleanly
    without(lambda k: k == sys.argv[3])
elif what == "drop-layer":    # every tensor of a layer removed cleanly
    without(lambda k: k.startswith(sys.argv[3]))
EOF
}

# ------------------------------------------------------------- command line
err E01 2 "The following argument was not expected: --bogus" "$LOSS" --data "$LOGPS" --bogus
err E02 2 "--adapter is required" "$MERGE" --model "$FIX/llama_tiny" --output "$(fresh)"
err E03 2 "--config: File does not exist" "$EVAL" --config "$TMP/no-such.yaml" --data "$PROMPTS" --output "$(fresh)"
err E04 2 "--batch-size: expected a positive integer, got '0'" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$FIX/llama_tiny" --batch-size 0
err E05 2 "--dtype: fp8 not in {auto,fp32,bf16,fp16}" \
  "$MERGE" --model "$FIX/llama_tiny" --adapter "$FIX/llama_tiny_lora" --output "$(fresh)" --dtype fp8
err E06 2 "--resume excludes --resume-from" "$TRAIN" "${TINY[@]}" --output "$(fresh)" --resume --resume-from "$TMP"
err E07 1 "unexpected argument 'stray': overrides are section.key=value" \
  "$SAMPLE" --data "$PROMPTS" --output "$(fresh)" --policy "$FIX/llama_tiny" stray
err E08 1 "--output DIR is required" "$TRAIN" "${TINY[@]}"
err E09 1 "--nproc must be >= 1, got 0" "$TRAIN" "${TINY[@]}" --output "$(fresh)" --nproc 0

# ------------------------------------------------------------------- config
printf 'train:\n  batch_size: 8\n  warmup_step: 4\n' >"$TMP/typo.yaml"
err E10 1 "typo.yaml:3: unknown key train.warmup_step; did you mean train.warmup_steps?" \
  "$TRAIN" --config "$TMP/typo.yaml" "model.path=$FIX/llama_tiny" "data.train=$DATA" --output "$(fresh)"
printf 'loss:\n  name: lire\n  temperature: [1\n' >"$TMP/syntax.yaml"
err E11 1 "syntax.yaml:4: end of sequence flow not found" "$LOSS" --config "$TMP/syntax.yaml" --data "$LOGPS"
printf 'loss: 3\n' >"$TMP/scalar.yaml"
err E12 1 "scalar.yaml:1: loss: expected a mapping, got integer 3" "$LOSS" --config "$TMP/scalar.yaml" --data "$LOGPS"
err E13 1 "override 'train.lr=fast': train.lr: expected a number, got string \"fast\"" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" train.lr=fast
err E14 1 "override '--top-p 1.5': sample.top_p: must be in (0, 1], got 1.5" \
  "$SAMPLE" --data "$PROMPTS" --output "$(fresh)" --policy "$FIX/llama_tiny" --top-p 1.5
err E15 1 "loss.name: unknown loss 'lipoo'; did you mean lipo? (registered losses: dpo, dpo-pl, lipo, lire," "$TRAIN" "${TINY[@]}" --output "$(fresh)" loss.name=lipoo
err E16 1 "loss.temperature: not an option of loss 'dpo' (it belongs to 'lire'" "$TRAIN" "${TINY[@]}" --output "$(fresh)" loss.name=dpo loss.temperature=3
err E17 1 "model.dtype: fp16 compute needs a CUDA device" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$FIX/llama_tiny" model.dtype=fp16
err E18 1 "rewards.short.type: must be one of" \
  "$SAMPLE" --data "$PROMPTS" --output "$(fresh)" --policy "$FIX/llama_tiny" 'rewards.short={type: lenth}'
err E19 1 "'shrt' is not a reward source of the rewards section; did you mean short? (it has: short)" \
  "$SAMPLE" --data "$PROMPTS" --output "$(fresh)" --policy "$FIX/llama_tiny" --reward shrt "${RULE[@]}"
err E20 1 "no reward source: give --reward-model [NAME=]DIR, --reward NAME or a rewards section" \
  "$EVAL" --data "$PROMPTS" --output "$(fresh)" --policy "$FIX/llama_tiny" --max-new-tokens 2 --no-progress
err E21 1 "nothing to do: give --policy DIR" "$SCORE" --data "$DATA" --output "$(fresh)"
err E22 1 "output.keep_best needs eval lists (data.eval or data.eval_fraction)" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" output.keep_best=eval/pair_accuracy
err E23 1 "model.path: no model given" "$TRAIN" "${TINY[@]}" --output "$(fresh)" model.path=null

# --------------------------------------------------------------------- data
err E24 1 "no-such.jsonl: cannot open file" "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$TMP/no-such.jsonl"
f=$(bad_data syntax '{"prompt": "x", "responses": ["a", "b"], "rewards": [1, 2}')
err E25 1 "syntax.jsonl:4: invalid JSON" "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f"
f=$(bad_data nan '{"prompt": "x", "responses": ["a", "b"], "rewards": [1, NaN]}')
err E26 1 "nan.jsonl:4: invalid JSON" "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f"
f=$(bad_data array '[1, 2]')
err E27 1 "array.jsonl:4: a record must be a JSON object, got [1,2]" "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f"
f=$(bad_data noprompt '{"responses": ["a", "b"], "rewards": [1, 2]}')
err E28 1 "noprompt.jsonl:4: missing 'prompt'" "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f"
f=$(bad_data noresp '{"prompt": "x", "responses": [], "rewards": []}')
err E29 1 "noresp.jsonl:4: 'responses' is an empty list" "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f"
f=$(bad_data short '{"prompt": "x", "responses": ["a", "b"], "rewards": [1]}')
err E30 1 "short.jsonl:4: 'rewards' has 1 entries but the list has 2 responses" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f"
f=$(bad_data text '{"prompt": "x", "responses": ["a", "b"], "rewards": [1, "high"]}')
err E31 1 "text.jsonl:4: rewards[1] must be a number, got \"high\"" "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f"
f=$(bad_data labels '{"prompt": "x", "responses": ["a", "b"], "labels": [0.5, 1.5]}')
err E32 1 "labels.jsonl:4: labels[1] = 1.5 is outside [0, 1]" "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f"
f=$(bad_data untargeted '{"prompt": "x", "responses": ["a", "b"]}')
err E33 1 "untargeted.jsonl:4: the list has no 'rewards', 'ranks' or 'labels' to train on" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f"
f=$(bad_data mixed '{"prompt": "x", "responses": ["a", "b"], "ranks": [2, 1]}')
err E34 1 "mixed.jsonl:4: this list has ranks but earlier lists have rewards" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f" data.shuffle=false
f=$(bad_data vocab '{"prompt_ids": [1, 5], "responses_ids": [[7, 99999], [8]], "rewards": [1, 2]}')
err E35 1 "vocab.jsonl:4: responses_ids[0][1] = 99999 is outside the vocabulary [0, 512)" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$f"
: >"$TMP/empty.jsonl"
err E36 1 "empty.jsonl: no training lists left" "$TRAIN" "${TINY[@]}" --output "$(fresh)" "data.train=$TMP/empty.jsonl"
printf '{"rewards": [1, 0]}\n' >"$TMP/nologps.jsonl"
err E37 1 "nologps.jsonl:1: missing field 'logps'" "$LOSS" --data "$TMP/nologps.jsonl"
printf '{"prompt": "x", "responses": ["a", "b"], "ref_logps": [-1, -2]}\n' >"$TMP/scored.jsonl"
err E38 1 "scored.jsonl:1: field 'ref_logps' is already there; pass --overwrite" \
  "$SCORE" --data "$TMP/scored.jsonl" --output "$(fresh)" --policy "$FIX/llama_tiny" --no-progress

# ---------------------------------------------------------------- tokenizer
m=$(model_copy tok-corrupt)
echo "not a sentencepiece model" >"$m/tokenizer.model"
err E39 1 "tok-corrupt/tokenizer.model: cannot load the sentencepiece model (corrupt, truncated or not a sentencepiece model file)" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress
m=$(model_copy tok-none)
rm "$m/tokenizer.model"
err E40 1 "tok-none: no tokenizer.model or spiece.model" "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress

# ------------------------------------------------- model folder, config.json
err E41 1 "no-such-model: no such folder (expected a folder holding config.json)" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$TMP/no-such-model" --no-progress
m=$(model_copy cfg-none)
rm "$m/config.json"
err E42 1 "cfg-none/config.json: cannot open (no such file)" "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress
m=$(model_copy cfg-syntax)
echo '{"vocab_size": ' >"$m/config.json"
err E43 1 "cfg-syntax/config.json: not valid JSON" "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress
m=$(model_copy cfg-arch)
edit_json "$m/config.json" 'c["architectures"] = ["GPT2LMHeadModel"]; c["model_type"] = "gpt2"'
err E44 1 "cfg-arch/config.json: architectures: 'GPT2LMHeadModel' is not supported (supported: " \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress
m=$(model_copy cfg-type)
edit_json "$m/config.json" 'c["hidden_size"] = "64"'
err E45 1 "cfg-type/config.json: hidden_size: expected an integer, got string \"64\"" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress
m=$(model_copy cfg-heads)
edit_json "$m/config.json" 'c["num_key_value_heads"] = 3'
err E46 1 "cfg-heads/config.json: num_key_value_heads: 3 does not divide num_attention_heads (4)" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress
err E47 1 "config.json: architecture LlamaForCausalLM is not a sequence classifier" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --reward-model "$FIX/llama_tiny" --no-progress
m=$(model_copy cfg-missing)
edit_json "$m/config.json" 'del c["hidden_size"]'  # HF's default, 4096, applies
err E48 1 "cfg-missing/model.safetensors: tensor 'model.embed_tokens.weight' has shape [512,64], the model expects [512,4096]" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress

# -------------------------------------------------------------- safetensors
m=$(model_copy st-none)
rm "$m/model.safetensors"
err E49 1 "st-none: no checkpoint in this folder: looked for model.safetensors and model.safetensors.index.json" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress
st_case() {  # st_case ID WANT WHAT [ARG]
  local id=$1 want=$2
  shift 2
  local m
  m=$(model_copy "st-$id")
  edit_safetensors "$m/model.safetensors" "$@"
  err "$id" 1 "st-$id/model.safetensors: $want" "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress
}
st_case E50 "truncated: 3 bytes, shorter than the 8-byte header length of a safetensors file" tiny
st_case E51 "header length 700000 reaches past the end of the file" past-eof
st_case E52 "the header must be a JSON object starting with '{' (not a safetensors file?)" not-json
st_case E53 "tensor 'model.norm.weight': data_offsets [631808,632064] reach past the end of the file" truncate
st_case E54 "tensor 'model.embed_tokens.weight': data_offsets [4, 131076] overlap those of tensor 'lm_head.weight'" overlap
st_case E55 "tensor 'model.norm.weight': unsupported dtype 'Q4' (supported: " dtype model.norm.weight
st_case E56 "tensor 'model.norm.weight': shape [64] of F16 needs 128 bytes but data_offsets [631808,632064] span 256" \
  f16 model.norm.weight
st_case E57 "256 bytes after the last tensor's data" hole model.norm.weight
st_case E86 "tensor 'model.norm.weight' has dtype Int; weights must be floating point" i32 model.norm.weight
m=$(model_copy st-E58)
edit_safetensors "$m/model.safetensors" drop model.layers.1.self_attn.k_proj.weight
err E58 1 "st-E58: tensor 'model.layers.1.self_attn.k_proj.weight' is missing (the model expects it with shape [32,64])" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress
m=$(model_copy st-E59)
mv "$m/model.safetensors" "$m/model-00001-of-00002.safetensors"
python3 - "$m" <<'EOF'
import json, struct, sys
folder = sys.argv[1]
raw = open(f"{folder}/model-00001-of-00002.safetensors", "rb").read()
header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
weight_map = {k: "model-00001-of-00002.safetensors" for k in header if k != "__metadata__"}
weight_map["model.norm.weight"] = "model-00002-of-00002.safetensors"
json.dump({"weight_map": weight_map}, open(f"{folder}/model.safetensors.index.json", "w"))
EOF
err E59 1 "model.safetensors.index.json: shard 'model-00002-of-00002.safetensors' (holding 'model.norm.weight') is missing" \
  "$SCORE" --data "$DATA" --output "$(fresh)" --policy "$m" --no-progress

# ----------------------------------------------------------------- adapters
merge() { "$MERGE" --model "$FIX/llama_tiny" --output "$(fresh)" "$@"; }
err E60 1 "no-such-adapter: no such folder (expected a folder holding adapter_config.json)" merge --adapter "$TMP/no-such-adapter"
a=$(model_copy ad-nocfg llama_tiny_lora)
rm "$a/adapter_config.json"
err E61 1 "ad-nocfg/adapter_config.json: cannot open (no such file)" merge --adapter "$a"
a=$(model_copy ad-nost llama_tiny_lora)
rm "$a/adapter_model.safetensors"
err E62 1 "ad-nost: adapter_model.safetensors not found" merge --adapter "$a"
a=$(model_copy ad-peft llama_tiny_lora)
edit_json "$a/adapter_config.json" 'c["peft_type"] = "IA3"'
err E63 1 "ad-peft/adapter_config.json: peft_type: 'IA3' is not supported (supported: LORA)" merge --adapter "$a"
a=$(model_copy ad-rank llama_tiny_lora)
edit_json "$a/adapter_config.json" 'c["r"] = 8'
err E64 1 "ad-rank/adapter_model.safetensors: 'model.layers.0.self_attn.q_proj': lora_A [4,64] and lora_B [64,4] do not fit weight [64,64] with r = 8" \
  merge --adapter "$a"
a=$(model_copy ad-targets llama_tiny_lora)
edit_json "$a/adapter_config.json" 'c["target_modules"] = ["k_proj"]'
err E65 1 "which adapter_config.json's target_modules / layers_to_transform do not select" merge --adapter "$a"
err E66 1 "adapts 'model.layers.0.self_attn.q_proj', which is not a module of this model" \
  "$MERGE" --model "$FIX/t5_tiny" --adapter "$FIX/llama_tiny_lora" --output "$(fresh)"

# ------------------------------------------------- run folders, checkpoints
RUN="$TMP/run"
"$TRAIN" "${TINY[@]}" --output "$RUN" output.save_every=1 >/dev/null 2>&1
check "a one-step run to resume from" $?
CK="$RUN/checkpoints/step-1"
checkpoint_copy() {  # a copy of the run's checkpoint to break
  rm -rf "${TMP:?}/$1"
  cp -r "$CK" "$TMP/$1"
  echo "$TMP/$1"
}
err E67 1 "is not empty; pass --resume to continue that run" "$TRAIN" "${TINY[@]}" --output "$RUN"
echo x >"$TMP/a-file"
err E68 1 "--output $TMP/a-file is a file, not a folder" "$TRAIN" "${TINY[@]}" --output "$TMP/a-file"
err E69 1 "not a complete checkpoint (no trainer_state.json)" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" --resume-from "$TMP/no-such-checkpoint"
c=$(checkpoint_copy ck-syntax)
echo '{"step": ' >"$c/trainer_state.json"
err E70 1 "ck-syntax/trainer_state.json: not valid JSON" "$TRAIN" "${TINY[@]}" --output "$(fresh)" --resume-from "$c"
c=$(checkpoint_copy ck-field)
edit_json "$c/trainer_state.json" 'del c["position"]'
err E71 1 "ck-field/trainer_state.json: missing field 'position'" "$TRAIN" "${TINY[@]}" --output "$(fresh)" --resume-from "$c"
c=$(checkpoint_copy ck-negative)
edit_json "$c/trainer_state.json" 'c["step"] = -3'
err E72 1 "ck-negative/trainer_state.json: step, epoch and position must be >= 0" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" --resume-from "$c"
m=$(model_copy one-layer)  # the run's checkpoint on a base model with one layer fewer
edit_safetensors "$m/model.safetensors" drop-layer model.layers.1.
edit_json "$m/config.json" 'c["num_hidden_layers"] = 1'
err E73 1 "adapter_model.safetensors: tensor 'base_model.model.model.layers.1." \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" --resume-from "$CK" "model.path=$m"
err E74 1 "step-1: no model/ folder; was this run a LoRA run (lora.enabled: true)?" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" --resume-from "$CK" lora.enabled=false
c=$(checkpoint_copy ck-rng)
rm "$c/rng.safetensors"
err E75 1 "ck-rng/rng.safetensors: cannot open: No such file or directory" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" --resume-from "$c"
c=$(checkpoint_copy ck-optimizer)
echo garbage >"$c/optimizer.pt"
err E76 1 "ck-optimizer/optimizer.pt: cannot read the optimizer state (PytorchStreamReader failed reading zip archive: not a ZIP archive)" \
  "$TRAIN" "${TINY[@]}" --output "$(fresh)" --resume-from "$c"
err E87 1 "lora.r is 4 but the adapter in $CK/adapter has 8; set lora.r: 8 (an adapter keeps the LoRA settings it was trained with)" \
  "$TRAIN" "${TINY[@]}" --output "$RUN" --resume lora.r=4

# --------------------------------------------------- distributed environment
err E77 1 "environment variable RANK is set but WORLD_SIZE is not" env RANK=0 "$TRAIN" "${TINY[@]}" --output "$(fresh)"
err E78 1 "rank 3 is outside [0, 2) (RANK vs WORLD_SIZE)" \
  env RANK=3 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 "$TRAIN" "${TINY[@]}" --output "$(fresh)"
err E79 1 "environment variable WORLD_SIZE='two': expected a non-negative integer" \
  env RANK=0 WORLD_SIZE=two "$TRAIN" "${TINY[@]}" --output "$(fresh)"
err E80 1 "environment variable MASTER_PORT=70000: expected 1..65535" \
  env RANK=0 WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=70000 "$TRAIN" "${TINY[@]}" --output "$(fresh)"
err E81 1 "SLURM_PROCID is set but neither SLURM_JOB_NODELIST nor MASTER_ADDR is" \
  env -u MASTER_ADDR SLURM_PROCID=0 SLURM_NTASKS=2 "$TRAIN" "${TINY[@]}" --output "$(fresh)"
err E82 1 "SLURM_JOB_NODELIST='node[1-': unbalanced brackets" \
  env -u MASTER_ADDR SLURM_PROCID=0 SLURM_NTASKS=2 'SLURM_JOB_NODELIST=node[1-' "$TRAIN" "${TINY[@]}" --output "$(fresh)"

# ----------------------------------------------------------- output folders
mkdir -p "$TMP/used"
echo x >"$TMP/used/file"
err E83 1 "used: exists and is not empty" "$MERGE" --model "$FIX/llama_tiny" --adapter "$FIX/llama_tiny_lora" --output "$TMP/used"
err E84 1 "used: the report folder exists; pass --overwrite to replace it" "$EVAL" --data "$PROMPTS" --output "$TMP/used" --responses "$DATA" "${RULE[@]}" --no-progress
err E85 1 "give --policy DIR or --responses FILE, not both" "$EVAL" --data "$PROMPTS" --output "$(fresh)" --responses "$DATA" --policy "$FIX/llama_tiny" "${RULE[@]}"

# Every catalogue entry has its case here, and every case its entry.
doc_ids=$(grep -oE '^### E[0-9]+' "$ROOT/docs/errors.md" | cut -c5- | sort)
run_ids=$(printf '%s\n' "${ran_ids[@]}" | sort -u)
[ "$doc_ids" = "$run_ids" ]
check "docs/errors.md ids ($(echo "$doc_ids" | wc -l)) = ids tested here ($(echo "$run_ids" | wc -l))" $?
[ "$(echo "$run_ids" | wc -l)" -eq "${#ran_ids[@]}" ]; check "no id tested twice" $?

finish
