"""Finding weights (prefbench.weights), shared by the encoders, the VLM scorers and the trainer:
one rule for "this names a path, not a hub repo", and one-line errors that say what to provide."""

from __future__ import annotations

import pytest

from prefbench.weights import WeightsError, check_model_folder, hub_file, names_a_path
from tests.fixtures.cli import run_cli
from tests.fixtures.extras import skip_without_extra


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


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _online_env(**extra) -> dict:
    """This environment without the offline switches the test fixtures set, plus ``extra``."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return {**env, **extra}


def _python(args: list, env: dict, timeout: int = 300):
    import subprocess
    import sys

    return subprocess.run([sys.executable, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_a_hub_that_does_not_answer_fails_fast_and_says_hf_download(tmp_path):
    """A scorer whose default weights live on the hub, with the hub unreachable (HF_ENDPOINT on a
    closed port): one probe, then huggingface_hub's offline mode, so the clean error comes in
    seconds (it took ~50 s of "Retrying in Ns" before) and names the command that exists (`hf`)."""
    import time

    skip_without_extra("pickscore")
    env = _online_env(HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", HF_HOME=str(tmp_path / "hf"))
    start = time.perf_counter()
    proc = _python(["-m", "prefbench", "run", "--scorer", "pickscore", "--limit", "2", "--no-progress",
                    "--results", tmp_path / "r"], env)
    took = time.perf_counter() - start
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Retrying" not in proc.stderr and "Traceback" not in proc.stderr
    assert "did not answer within 3 s" in proc.stderr
    assert "hf download yuvalkirstain/PickScore_v1 --local-dir DIR" in proc.stderr
    assert "huggingface-cli" not in proc.stderr
    assert took < 25, f"{took:.1f} s: the hub lookup still retries"


def test_a_file_in_the_hub_cache_loads_when_the_hub_does_not_answer(tmp_path):
    """Failing fast must not cost the cache: a file fetched once (from the hub-shaped server on
    127.0.0.1) loads again with the hub gone; a file never fetched is a clean error at once."""
    from prefbench.testing.hub_server import HubServer

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "head.pth").write_bytes(b"weights")
    code = ("from prefbench.weights import hub_file\n"
            "print(hub_file('owner/head', 'head.pth', 'head').read_bytes().decode())\n")
    home = str(tmp_path / "hf")
    with HubServer({"owner/head": repo}, repo_type="model") as hub:
        fetched = _python(["-c", code], _online_env(HF_HOME=home, HF_ENDPOINT=hub.url))
    assert fetched.returncode == 0 and fetched.stdout.strip() == "weights", fetched.stderr[-2000:]
    gone = _online_env(HF_HOME=home, HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    cached = _python(["-c", code], gone)
    assert cached.returncode == 0 and cached.stdout.strip() == "weights", cached.stderr[-2000:]
    missing = _python(["-c", code.replace("head.pth', 'head'", "other.pth', 'head'")], gone)
    assert missing.returncode == 1 and "Retrying" not in missing.stderr
    assert "other.pth is not in the local hub cache (the hub at http://127.0.0.1:" in missing.stderr
    assert "hf download owner/head other.pth --local-dir DIR" in missing.stderr
