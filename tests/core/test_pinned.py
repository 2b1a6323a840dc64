"""Familiar model names (prefbench.pinned): `prefbench download --weights NAME` against hub-shaped and
GitHub-raw-shaped servers on 127.0.0.1, never the internet. The files land in one folder, each checked
(a pinned sha256 where one was verified, else the hub's record), a rerun fetches nothing, `--model NAME`
resolves to the folder with the scorer options the name implies, and a run records the name and commits."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from prefbench.pinned import PINNED
from tests.fixtures.cli import run_cli
from tests.fixtures.extras import missing, requires_extra
from tests.fixtures.static_server import static_server

needs_hub = requires_extra("hub")
needs_clip = requires_extra("clip")  # the tiny CLIP checkpoint the hub serves is built with torch + transformers
LAION = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


def env(tmp_path: Path, url: str | None = None, **extra) -> dict:
    out = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": "",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PREFBENCH_CACHE": str(tmp_path / "cache")}
    if url:
        out["HF_ENDPOINT"] = url
    return {**out, **extra}


def cli(args, tmp_path, url=None, **extra):
    return run_cli(list(map(str, args)), cwd=tmp_path, env_extra=env(tmp_path, url, **extra), timeout=300)


@pytest.fixture
def clip_repos(tmp_path):
    """A tiny transformers CLIP split as PickScore's model repository and the LAION processor repository
    (and the same whole folder as openai/clip-vit-large-patch14)."""
    from prefbench.testing.tiny_encoders import build_clip

    src = build_clip(tmp_path / "tiny_clip")
    ps, laion = tmp_path / "repo_pickscore", tmp_path / "repo_laion"
    ps.mkdir()
    laion.mkdir()
    for f in Path(src).iterdir():
        shutil.copy(f, (ps if f.name in ("config.json", "model.safetensors") else laion) / f.name)
    (laion / "open_clip_pytorch_model.bin").write_bytes(b"not fetched: PickScore needs only the processor files")
    return {"yuvalkirstain/PickScore_v1": ps, LAION: laion, "openai/clip-vit-large-patch14": Path(src)}


@pytest.fixture
def hub(clip_repos):
    from prefbench.testing.hub_server import HubServer

    server = HubServer(clip_repos, "model", max_seconds=300).start()
    yield server
    server.stop()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_hub
@needs_clip
def test_download_weights_by_familiar_name_checks_every_file_and_a_run_records_the_name(tmp_path, hub, clip_repos):
    proc = cli(["download", "--weights", "PickScore_v1", "--json"], tmp_path, hub.url)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    folder = tmp_path / "cache" / "models" / "PickScore_v1"
    assert m["folder"] == str(folder) and (m["name"], m["scorer"], m["params"]) == ("PickScore_v1", "pickscore", {})
    files = {f["path"]: f for f in m["files"]}
    assert set(files) == {"config.json", "model.safetensors", "preprocessor_config.json", "tokenizer_config.json",
                          "vocab.json", "merges.txt", "tokenizer.json"}  # not the LAION repo's open_clip weights
    for path, f in files.items():
        repo_id = "yuvalkirstain/PickScore_v1" if path in ("config.json", "model.safetensors") else LAION
        assert f["repo"] == repo_id and f["revision"] == hub.repos[repo_id].sha and f["requested_revision"] == "main"
        assert f["sha256"] == sha256(folder / path) == sha256(clip_repos[repo_id] / path) and f["fetched"]
    assert files["model.safetensors"]["checked"] == "hub sha256"  # stored with LFS
    assert files["config.json"]["checked"] == "git blob id"
    assert json.loads((folder / "prefbench_weights.json").read_text())["files"] == m["files"]
    gets = hub.file_gets()
    assert gets == 7 and hub.unhandled == []

    again = cli(["download", "--weights", "PickScore_v1"], tmp_path, hub.url)
    assert again.returncode == 0, again.stderr
    assert hub.file_gets() == gets and "0 fetched now" in again.stdout  # nothing fetched again

    listed = cli(["list", "--json"], tmp_path)
    models = {m["alias"]: m["models"] for m in json.loads(listed.stdout)["models"]}
    assert models["PickScore_v1"] == ["PickScore_v1"] and models["HPSv2.1"] == []  # downloaded or not

    if missing("pickscore"):  # the run below needs torch + transformers
        return
    run = cli(["run", "--scorer", "pickscore", "--model", "PickScore_v1", "--limit", "2", "--results", "r",
               "--no-progress", "--bootstrap-resamples", "100", "--json"], tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["model"] == "PickScore_v1" and summary["counts"]["ok"] > 0
    rec = json.loads((tmp_path / summary["run_dir"] / "run.json").read_text())
    assert rec["model"]["revision"] == (f"yuvalkirstain/PickScore_v1@{hub.repos['yuvalkirstain/PickScore_v1'].sha[:12]},"
                                        f"{LAION}@{hub.repos[LAION].sha[:12]}")
    assert str(tmp_path) not in json.dumps(rec["scorer"]) + json.dumps(rec["model"])  # no machine path recorded

    wrong = cli(["run", "--scorer", "clip", "--model", "PickScore_v1", "--limit", "2"], tmp_path)
    assert wrong.returncode == 2
    assert "PickScore_v1 is weights for the pickscore scorer, not clip" in wrong.stderr


@needs_hub
@needs_clip
def test_a_file_unlike_the_hub_record_is_removed(tmp_path, hub, clip_repos):
    weights = clip_repos["yuvalkirstain/PickScore_v1"] / "model.safetensors"
    bad = bytearray(weights.read_bytes())
    bad[200] ^= 0xFF
    weights.write_bytes(bytes(bad))  # the server still announces the old sha256
    proc = cli(["download", "--weights", "PickScore_v1"], tmp_path, hub.url)
    assert proc.returncode == 2
    assert f"has sha256 {hashlib.sha256(bad).hexdigest()}" in proc.stderr and "the hub's record" in proc.stderr
    folder = tmp_path / "cache" / "models" / "PickScore_v1"
    assert not (folder / "model.safetensors").exists() and not (folder / "prefbench_weights.json").exists()
    run = cli(["run", "--scorer", "pickscore", "--model", "PickScore_v1"], tmp_path)
    assert run.returncode == 2
    assert "PickScore_v1 is not downloaded: `prefbench download --weights PickScore_v1`" in run.stderr


@needs_hub
@needs_clip
def test_a_github_file_is_checked_against_its_pinned_sha256(tmp_path, hub):
    head = next(f for f in PINNED["Aesthetic"].files if f.on_github)
    assert (head.sha256, head.size) == ("21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0", 3714759)
    raw = tmp_path / "raw"
    where = raw / head.repo.removeprefix("github:") / head.revision / head.names[0]
    where.parent.mkdir(parents=True)
    where.write_bytes(b"\0" * head.size)  # the right size, not the pinned content
    with static_server(raw) as url:
        proc = cli(["download", "--weights", "Aesthetic"], tmp_path, hub.url, PREFBENCH_GITHUB_RAW=url)
    assert proc.returncode == 2
    assert f"has sha256 {hashlib.sha256(where.read_bytes()).hexdigest()}, pinned {head.sha256}" in proc.stderr
    folder = tmp_path / "cache" / "models" / "Aesthetic"
    assert (folder / "config.json").is_file()  # the CLIP files came from the hub first
    assert not (folder / head.names[0]).exists() and not (folder / "prefbench_weights.json").exists()


@needs_hub
def test_a_name_implies_its_scorer_options(tmp_path, monkeypatch):
    from prefbench.models import resolve_model
    from prefbench.testing.hub_server import HubServer

    repo = tmp_path / "hps"
    repo.mkdir()
    (repo / "HPS_v2_compressed.pt").write_bytes(b"v2.0 weights")
    (repo / "HPS_v2.1_compressed.pt").write_bytes(b"v2.1 weights")
    with HubServer({"xswu/HPSv2": repo}, "model", max_seconds=120) as server:
        proc = cli(["download", "--weights", "HPSv2"], tmp_path, server.url)
        assert proc.returncode == 0, proc.stderr
        assert server.file_gets() == 1 and server.file_gets("HPS_v2_compressed.pt") == 1
    assert "-S version=v2.0" in proc.stdout
    monkeypatch.setenv("PREFBENCH_CACHE", str(tmp_path / "cache"))
    resolved = resolve_model("HPSv2", "hpsv2")
    assert resolved.path == tmp_path / "cache" / "models" / "HPSv2" and resolved.params == {"version": "v2.0"}
    assert resolved.id == "HPSv2" and resolved.revision.startswith("xswu/HPSv2@")
    assert resolve_model("xswu/HPSv2") is None  # a hub id stays a hub id
    if not missing("hpsv2"):
        from prefbench.runner import RunConfig, build_scorer

        _, spec, info = build_scorer(RunConfig(scorer="hpsv2", model="HPSv2"))
        assert spec["resolved"]["version"] == "v2.0" and spec["passed"]["model"] == "HPSv2"
        assert info["id"] == "HPSv2"


def test_offline_it_says_which_files_to_put_where(tmp_path):
    proc = cli(["download", "--weights", "HPSv2.1"], tmp_path, HF_HUB_OFFLINE="1")
    assert proc.returncode == 2
    folder = tmp_path / "cache" / "models" / "HPSv2.1"
    assert (f"HPS_v2.1_compressed.pt: hf download xswu/HPSv2 HPS_v2.1_compressed.pt --revision main "
            f"--local-dir {folder}") in proc.stderr or "pip install 'prefbench[hub]'" in proc.stderr
    bad = cli(["download", "--weights", "HPSv2.1", "--data-dir", "x"], tmp_path)
    assert bad.returncode == 2 and "give no DATASET, --split or --data-dir" in bad.stderr
    unknown = cli(["download", "--weights", "ImageReward"], tmp_path)
    assert unknown.returncode == 2 and "did you mean ImageReward-v1.0" in unknown.stderr
