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
# A second venv (default .venvs/reference-hpsv3) holds the official HPSv3 package for
# tests/scorers/test_hpsv3_parity.py: hpsv3 1.0.0 pins transformers==4.45.2, deepspeed and its
# training stack, which conflict with the encoders' reference venv too.
#
# Usage: scripts/setup_reference_envs.sh [DEST [HPSV3_DEST]]
#        (defaults: .venvs/reference, .venvs/reference-hpsv3; REFERENCE_ENVS="encoders hpsv3" picks which)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.venvs/reference}"
HPSV3_DEST="${2:-.venvs/reference-hpsv3}"
PY="${PYTHON:-python3}"
REFERENCE_ENVS="${REFERENCE_ENVS:-encoders hpsv3}"

TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || echo 2.14.1)"
TV_VERSION="$("$PY" -c 'import torchvision; print(torchvision.__version__.split("+")[0])' 2>/dev/null || echo 0.29.1)"

# hpsv3 goes in without its dependencies (deepspeed, diffusers, opencv, ... are for training and
# generation) plus what `from hpsv3 import HPSv3RewardInferencer` imports: its inference module
# imports its training module, hence trl/peft/datasets/matplotlib/tensorboard at the versions of
# transformers 4.45's time.
build_hpsv3() {
  if [ -x "$HPSV3_DEST/bin/python" ] && "$HPSV3_DEST/bin/python" -W ignore -c 'from hpsv3 import HPSv3RewardInferencer' >/dev/null 2>&1; then
    echo "hpsv3 reference env ready: $HPSV3_DEST"
    return 0
  fi
  "$PY" -m venv --clear "$HPSV3_DEST"
  "$HPSV3_DEST/bin/python" -m pip install -q --upgrade pip
  "$HPSV3_DEST/bin/python" -m pip install -q \
    "torch==$TORCH_VERSION" "torchvision==$TV_VERSION" "transformers==4.45.2" "trl==0.11.4" "peft==0.13.2" \
    "accelerate==1.0.1" "datasets<4" "numpy<2.3" pandas pyyaml omegaconf fire matplotlib tensorboard safetensors \
    requests packaging pillow tqdm rich "setuptools<81"
  "$HPSV3_DEST/bin/python" -m pip install -q --no-deps "hpsv3==1.0.0"
  "$HPSV3_DEST/bin/python" -W ignore -c 'import transformers, torch; from hpsv3 import HPSv3RewardInferencer; print("hpsv3 reference env:", transformers.__version__, torch.__version__)'
}

build_encoders() {
if [ -x "$DEST/bin/python" ] && "$DEST/bin/python" -W ignore -c 'import ImageReward, clip, transformers; from hpsv2 import img_score' >/dev/null 2>&1; then
  echo "reference env ready: $DEST"
  return 0
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
}

# each venv is built on its own: one that fails does not keep the other from being built
failed=0
case " $REFERENCE_ENVS " in *" encoders "*) (build_encoders) || { echo "encoders reference env failed" >&2; failed=1; } ;; esac
case " $REFERENCE_ENVS " in *" hpsv3 "*) (build_hpsv3) || { echo "hpsv3 reference env failed" >&2; failed=1; } ;; esac
exit $failed
