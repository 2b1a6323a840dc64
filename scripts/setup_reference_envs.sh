#!/usr/bin/env bash
# Builds the reference virtualenv the encoder parity tests compare against
# (tests/scorers/test_encoders_parity.py skips, with this command in its reason, when it is absent).
#
# The ImageReward package (`image-reward`) needs transformers<=4.55 and cannot share the
# main environment (transformers 5). The same venv runs PickScore's README scoring function on
# the transformers generation it was written for, OpenAI's `clip` package (ImageReward's CLIP
# and aesthetic baselines) and HPSv2's own scoring code. torch/torchvision are pinned to the
# main environment's versions so both sides run the same kernels.
#
# Usage: scripts/setup_reference_envs.sh [DEST]   (default: .venvs/reference)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.venvs/reference}"
PY="${PYTHON:-python3}"

TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || echo 2.14.1)"
TV_VERSION="$("$PY" -c 'import torchvision; print(torchvision.__version__.split("+")[0])' 2>/dev/null || echo 0.29.1)"

if [ -x "$DEST/bin/python" ] && "$DEST/bin/python" -W ignore -c 'import ImageReward, clip, transformers; from hpsv2 import img_score' >/dev/null 2>&1; then
  echo "reference env ready: $DEST"
  exit 0
fi
"$PY" -m venv --clear "$DEST"
"$DEST/bin/python" -m pip install -q --upgrade pip
"$DEST/bin/python" -m pip install -q \
  "torch==$TORCH_VERSION" "torchvision==$TV_VERSION" \
  "transformers>=4.45,<=4.55.4" "image-reward==1.5" "clip-anytorch==2.6.0" "setuptools<81"
# hpsv2: its pins (protobuf<4, pytest==7.2.0, ...) are for training and conflict with the rest, so
# the package goes in without them plus what its scoring path imports; its wheel lacks the BPE
# vocabulary its tokenizer loads at import time, which is the same file OpenAI's clip ships.
"$DEST/bin/python" -m pip install -q --no-deps "hpsv2==1.2.0"
"$DEST/bin/python" -m pip install -q clint ftfy regex
"$DEST/bin/python" - <<'PY'
import importlib.util, pathlib, shutil
clip_dir = pathlib.Path(importlib.util.find_spec("clip").origin).parent
hps_dir = pathlib.Path(importlib.util.find_spec("hpsv2").origin).parent / "src" / "open_clip"
shutil.copy(clip_dir / "bpe_simple_vocab_16e6.txt.gz", hps_dir / "bpe_simple_vocab_16e6.txt.gz")
PY
"$DEST/bin/python" -W ignore -c 'import transformers, torch, ImageReward, clip; from hpsv2 import img_score; print("reference env:", transformers.__version__, torch.__version__)'
