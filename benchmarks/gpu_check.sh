#!/usr/bin/env bash
# The one prepared GPU check (issue 36): one command, under 10 minutes, JSON under $OUT.
#
#   bash benchmarks/gpu_check.sh                 # on the lent GPU machine ($OUT set by the tool)
#   SHAPE=tiny DEVICE=cpu bash benchmarks/gpu_check.sh   # the same wiring on a CPU, tiny model
#
# Steps (each bounded by `timeout`; a step that cannot run says why in its JSON, the rest go on):
#   env            what the machine has (GPU, driver, torch, optional packages)     -> env.json
#   transformers   a random Qwen2.5-VL-7B-shaped model, prefbench's engine vs HF generate + forward,
#                  batch 64 and 256, 256 reasoning tokens and prefill-only           -> vlm_scoring_7b.json
#   vllm           the same jobs through --engine vllm: only where vllm is installed -> vllm.json
#   serve          prefbench serve throughput: only where fastapi/uvicorn are there -> serve.json
#   unsloth_grpo   two Unsloth GRPO steps: only where unsloth and trl are there      -> unsloth_grpo.json
#   hpsv3          recorded as not run: its 7B step (benchmarks/hpsv3_speed.py) does not fit here -> hpsv3.json
#   summary        seq/s against the roofline floor                                 -> gpu_check.json
#
# The device image (device/KINDS.md) has torch and transformers but no vllm, trl, unsloth or
# fastapi, and fetches nothing: those steps are recorded as not run there unless their wheels are
# carried (device/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(mktemp -d)}"
SHAPE="${SHAPE:-7b}"
DEVICE="${DEVICE:-cuda}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
echo "gpu_check: shape=$SHAPE device=$DEVICE out=$OUT"

# prefbench itself, without touching the machine's packages (no deps, no build isolation)
"$PY" -c 'import prefbench' 2>/dev/null || \
  "$PY" -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 || \
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PY" benchmarks/gpu_check.py env "$OUT"

skip() { printf '{"ran": false, "reason": "%s"}\n' "$2" >"$OUT/$1.json"; echo "$1: skipped: $2"; }
has() { "$PY" -c "import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in '$*'.split()) else 1)"; }

if [ "$SHAPE" = "7b" ]; then BATCH="64 256"; THINK=256; else BATCH="4 8"; THINK=8; fi
# shellcheck disable=SC2086
timeout 420 "$PY" benchmarks/vlm_scoring.py --shape "$SHAPE" --device "$DEVICE" --batch $BATCH --think "$THINK" \
  --repeat 1 --out "$OUT/vlm_scoring_7b.json" 2>&1 | tee "$OUT/transformers.log" \
  || echo "transformers step failed or timed out (see transformers.log)"

has vllm && skip vllm "vllm is installed but its GPU step is not scripted yet: run benchmarks/engines_cpu.py's jobs with --engine vllm" \
  || skip vllm "vllm is not installed on this machine"
has fastapi uvicorn && skip serve "serve step not scripted for the 7B shape yet (benchmarks/serve_batching.py times the tiny ones)" \
  || skip serve "fastapi/uvicorn are not installed on this machine"
has unsloth trl || skip unsloth_grpo "unsloth and trl are not installed on this machine"
has unsloth trl && { timeout 300 "$PY" benchmarks/train_grpo_speed.py --shape tiny --device cuda --modes plain \
  --steps 2 --warmup 0 --record "$OUT/unsloth_grpo.jsonl" >"$OUT/unsloth.log" 2>&1 \
  && printf '{"ran": true, "log": "unsloth.log"}\n' >"$OUT/unsloth_grpo.json" \
  || skip unsloth_grpo "the GRPO step failed (see unsloth.log)"; }
skip hpsv3 "not part of this 10-minute check: python benchmarks/hpsv3_speed.py --shape 7b --device cuda writes ~16 GB of random bf16 weights first (issue 34)"

"$PY" benchmarks/gpu_check.py summary "$OUT"
