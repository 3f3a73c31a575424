#!/usr/bin/env bash
# The README's first command: install, build, then run the main job on the
# embedded default: lire-train with configs/tiny.yaml (LIRE with LoRA on the
# tiny Llama of tests/fixtures, on the synthetic lists of configs/data/tiny),
# then lire-score and lire-loss on the example lists. A second run reuses the
# build and resumes the finished training run (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${LIRE_BUILD_DIR:-build}
mkdir -p out
echo
echo "== lire-train: LIRE + LoRA on tiny synthetic lists (configs/tiny.yaml); eval/pair_accuracy rises"
"$BUILD_DIR/lire-train" --config configs/tiny.yaml --output out/tiny-run --resume --no-progress
echo
echo "== lire-score: reference log-probs of candidate lists under a tiny Llama"
"$BUILD_DIR/lire-score" --data configs/examples/prompts.jsonl --output out/scored.jsonl \
  --policy tests/fixtures/hf/llama_tiny --no-progress model.dtype=fp32
echo
echo "== every registered loss, default options"
"$BUILD_DIR/lire-loss" --data configs/examples/scored-lists.jsonl --all --output out/losses.json
echo
echo "== LiPO-lambda from configs/lipo.yaml, then with overrides (constant lambda weight, beta 0.1 = dpo)"
"$BUILD_DIR/lire-loss" --config configs/lipo.yaml --data configs/examples/scored-lists.jsonl
"$BUILD_DIR/lire-loss" --config configs/lipo.yaml --data configs/examples/scored-lists.jsonl \
  loss.lambda_weight=constant loss.beta=0.1
