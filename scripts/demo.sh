#!/usr/bin/env bash
# The README's first command: install, build, then run the most complete jobs
# this version has. Until the embedded alignment demo exists (tiny model,
# Evolve/Iterate, lire-eval), that is lire-score on a tiny Llama (reference
# log-probs of candidate lists in every record format), and lire-loss: every
# registered loss and its ranking metrics on scored candidate lists, once with
# defaults and once with a config file plus overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${LIRE_BUILD_DIR:-build}
mkdir -p out
echo
echo "== lire-score: reference log-probs of candidate lists under a tiny Llama"
"$BUILD_DIR/lire-score" --data configs/examples/prompts.jsonl --output out/scored.jsonl \
  --policy tests/fixtures/hf/llama_tiny --no-progress model.dtype=fp32
echo
echo "== every registered loss, default options"
"$BUILD_DIR/lire-loss" --data configs/examples/scored-lists.jsonl --all --output out/losses.json
echo
echo "== LiPO-lambda from configs/lipo.yaml"
"$BUILD_DIR/lire-loss" --config configs/lipo.yaml --data configs/examples/scored-lists.jsonl
echo
echo "== the same with overrides: constant lambda weight and beta 0.1 give exactly dpo's value above"
"$BUILD_DIR/lire-loss" --config configs/lipo.yaml --data configs/examples/scored-lists.jsonl \
  loss.lambda_weight=constant loss.beta=0.1
