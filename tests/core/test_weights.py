"""Finding weights (prefbench.weights), shared by the encoders, the VLM scorers and the trainer:
one rule for "this names a path, not a hub repo", and one-line errors that say what to provide."""

from __future__ import annotations

import pytest

from prefbench.weights import WeightsError, check_model_folder, hub_file, names_a_path
from tests.fixtures.cli import run_cli


@pytest.mark.parametrize("name, is_path", [
    ("org/model", False), ("gpt2", False),  # hub ids ("org/name", or a legacy bare name)
    ("./model", True), ("/abs/model", True), ("~/model", True), ("runs/exp1/model", True),
    ("head.pth", True), ("org/model.safetensors", True), ("dir\\model", True),
])
def test_one_rule_tells_paths_from_hub_ids(name, is_path):
    assert names_a_path(name) is is_path


def test_hub_file_resolves_local_files_and_names_what_is_missing(tmp_path):
    weights = tmp_path / "head.pth"
    weights.write_bytes(b"x")
    assert hub_file(str(weights), "head.pth", "head") == weights
    assert hub_file(str(tmp_path), "head.pth", "head") == weights
    with pytest.raises(WeightsError, match="has no other.pth; put the file there"):
        hub_file(str(tmp_path), "other.pth", "head")
    # a missing path is reported as missing, never looked up on the hub
    with pytest.raises(WeightsError, match="nope.pth does not exist"):
        hub_file(str(tmp_path / "nope.pth"), "head.pth", "head")
    with pytest.raises(WeightsError, match="nope.pth does not exist"):
        hub_file("nope.pth", "head.pth", "head")


def test_train_with_a_missing_or_empty_model_is_a_clear_error(tmp_path):
    """The trainer checks --model before it reads the dataset (here a data folder that does not
    exist either: the model's error comes first): exit 2, one line, nothing written."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "weights.safetensors").write_bytes(b"")
    for model, message in ((tmp_path / "nope", "nope does not exist"),
                           (tmp_path / "empty", "empty has no config.json"),
                           (tmp_path / "weights.safetensors", "is a file; pass the folder")):
        out = tmp_path / f"out-{model.name}"
        proc = run_cli(["train", "--task", "rating", "--model", model, "--output", out, "--dataset", "imagereward",
                        "--data-dir", tmp_path / "no-data", "--max-steps", "1", "--no-progress"],
                       env_extra={"HF_HUB_OFFLINE": "1"}, timeout=600)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert "model to train" in proc.stderr and "no-data" not in proc.stderr
        assert not out.exists()


def test_check_model_folder_lets_hub_ids_and_model_folders_pass(tiny_vlm_dir):
    check_model_folder(str(tiny_vlm_dir), "model")
    check_model_folder("Qwen/Qwen2.5-VL-3B-Instruct", "model")  # a hub id: checked when it loads
