"""`prefbench download` for the README's three datasets (ImageReward, HPDv2, Pick-a-Pic), against
servers on 127.0.0.1 shaped as the hub and as GitHub's raw files: ImageReward's test.json comes from
the GitHub repository at a pinned commit and is checked against its pinned sha256; the images and the
other two datasets come from their hub repositories, as the manifests in prefbench.data name them."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from prefbench.data import IMAGEREWARD_TEST_JSON
from tests.fixtures.cli import run_cli
from tests.fixtures.extras import requires_extra
from tests.fixtures.static_server import static_server

needs_hub = requires_extra("hub")


@pytest.fixture
def raw_server(tmp_path):
    """A GitHub-raw-shaped file server on 127.0.0.1 over ``tmp_path/raw`` (owner/name/commit/path)."""
    root = tmp_path / "raw"
    root.mkdir()
    with static_server(root) as url:
        yield SimpleNamespace(root=root, url=url)


@pytest.fixture
def hub_factory():
    from prefbench.testing.hub_server import HubServer

    servers = []

    def start(repos, repo_type="dataset"):
        servers.append(HubServer(repos, repo_type, max_seconds=300).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def download(args, tmp_path, hub_url, raw_url=None):
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": "",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_ENDPOINT": hub_url}
    if raw_url:
        env["PREFBENCH_GITHUB_RAW"] = raw_url
    return run_cli(["download", *map(str, args)], cwd=tmp_path, env_extra=env, timeout=180)


def _webp(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="WEBP")
    return buf.getvalue()


def _serve_test_json(raw_server, content: bytes) -> Path:
    pf = IMAGEREWARD_TEST_JSON
    where = raw_server.root / pf.repo.removeprefix("github:") / pf.revision / pf.names[0]
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_bytes(content)
    return where


@pytest.fixture
def ir_model_repo(tmp_path, ir_annotation):
    """THUDM/ImageReward's hub model repository: test_images.zip holding the first two items' images."""
    items = json.loads(ir_annotation.read_text())
    repo = tmp_path / "ir_repo"
    repo.mkdir()
    n = 0
    with zipfile.ZipFile(repo / "test_images.zip", "w") as zf:
        for k, item in enumerate(items[:2]):
            for j, rel in enumerate(item["generations"]):
                zf.writestr(f"test_images/{rel}", _webp((k * 50, j * 30, 9)))
                n += 1
    (repo / "ImageReward.pt").write_bytes(b"weights: not part of the dataset download")
    return repo, n


@needs_hub
def test_imagereward_annotation_from_github_pinned_and_images_from_the_hub(tmp_path, ir_annotation, ir_model_repo,
                                                                           raw_server, hub_factory):
    ir_model_repo, n_images = ir_model_repo
    _serve_test_json(raw_server, ir_annotation.read_bytes())
    hub = hub_factory({"THUDM/ImageReward": ir_model_repo}, "model")
    data = tmp_path / "data"
    proc = download(["imagereward", "--data-dir", data, "--json"], tmp_path, hub.url, raw_server.url)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    assert (m["repo_id"], m["repo_type"], m["split"]) == ("THUDM/ImageReward", "model", "test")
    files = {f["path"]: f for f in m["files"]}
    assert set(files) == {"test_images.zip", "test.json"}  # not the model's weights
    assert files["test.json"]["checked"] == "pinned sha256" and files["test.json"]["sha256"] == IMAGEREWARD_TEST_JSON.sha256
    assert files["test.json"]["repo"] == "github:THUDM/ImageReward"
    assert files["test.json"]["revision"] == "c1392c6dd0fd6ecd6d416c96959ab744a6d0a8fb"
    assert files["test_images.zip"]["checked"] == "sha256"
    assert m["load"] == {"ok": True, "items": 466, "images": 2720, "images_present": n_images}
    assert (data / "test.json").read_bytes() == ir_annotation.read_bytes()

    gets = hub.file_gets()
    again = download(["imagereward", "--data-dir", data, "--json"], tmp_path, hub.url, "http://127.0.0.1:9")  # closed
    assert again.returncode == 0, again.stderr  # test.json is not fetched again: its record is in the manifest
    assert hub.file_gets() == gets
    assert {f["path"]: f["fetched"] for f in json.loads(again.stdout)["files"]} == {"test_images.zip": False,
                                                                                     "test.json": False}

    run = run_cli(["run", "--scorer", "random", "--dataset", "imagereward", "--data-dir", data, "--limit", "2",
                   "--out", tmp_path / "run", "--no-progress", "--bootstrap-resamples", "100"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "run" / "run.json").read_text())["counts"]["ok"] == n_images


@needs_hub
def test_an_annotation_unlike_the_pinned_one_is_removed(tmp_path, raw_server, hub_factory):
    repo = tmp_path / "ir_repo"
    repo.mkdir()
    with zipfile.ZipFile(repo / "test_images.zip", "w") as zf:
        zf.writestr("test_images/a.webp", _webp((1, 2, 3)))
    fake = json.dumps([{"id": "1", "prompt": "p", "generations": ["a.webp"], "ranking": [1]}]).encode()
    _serve_test_json(raw_server, fake)
    hub = hub_factory({"THUDM/ImageReward": repo}, "model")
    data = tmp_path / "data"
    proc = download(["imagereward", "--data-dir", data], tmp_path, hub.url, raw_server.url)
    assert proc.returncode == 2
    assert f"has sha256 {hashlib.sha256(fake).hexdigest()}, pinned {IMAGEREWARD_TEST_JSON.sha256}" in proc.stderr
    assert not (data / "test.json").exists() and not (data / "prefbench_download.json").exists()


@needs_hub
def test_hpdv2_test_split_from_its_hub_repository(tmp_path, hub_factory):
    repo = tmp_path / "hpd_repo"
    repo.mkdir()
    (repo / "test.json").write_text(json.dumps([
        {"prompt": "a", "image_path": ["00.jpg", "01.jpg", "02.jpg"], "rank": [1, 3, 2], "raw_annotations": []}]))
    with tarfile.open(repo / "test.tar.gz", "w:gz") as tf:
        for k in range(3):
            buf = io.BytesIO()
            Image.new("RGB", (6, 6), (k * 60, 0, 0)).save(buf, format="JPEG")
            info = tarfile.TarInfo(f"test/0{k}.jpg")
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))
    (repo / "train.json").write_text("[]")
    hub = hub_factory({"zhwang/HPDv2": repo})
    data = tmp_path / "data"
    proc = download(["hpdv2", "--data-dir", data, "--json"], tmp_path, hub.url)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    assert sorted(f["path"] for f in m["files"]) == ["test.json", "test.tar.gz"]  # not train.json
    assert m["load"] == {"ok": True, "items": 1, "images": 3, "images_present": 3}
    assert "has no file matching test.zip" in proc.stderr  # the other archive name the manifest allows


@needs_hub
def test_pickapic_shards_of_one_split_from_its_hub_repository(tmp_path, hub_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = tmp_path / "pap_repo"
    (repo / "data").mkdir(parents=True)
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(buf, format="PNG")
    png = buf.getvalue()
    for split, n in (("test_unique", 3), ("validation_unique", 2)):
        table = pa.table({"caption": [f"c{i}" for i in range(n)], "jpg_0": [png] * n, "jpg_1": [png] * n,
                          "label_0": [1.0, 0.5, 0.0][:n]})
        pq.write_table(table, repo / "data" / f"{split}-00000-of-00001.parquet")
    hub = hub_factory({"yuvalkirstain/pickapic_v1": repo})
    data = tmp_path / "data"
    proc = download(["pickapic", "--split", "test_unique", "--data-dir", data, "--json"], tmp_path, hub.url)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    assert [f["path"] for f in m["files"]] == ["data/test_unique-00000-of-00001.parquet"]
    assert m["load"]["ok"] and m["load"]["items"] == 3


def test_offline_the_imagereward_download_names_both_sources(tmp_path):
    proc = run_cli(["download", "imagereward", "--data-dir", tmp_path / "d"], cwd=tmp_path,
                   env_extra={"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert proc.returncode == 2
    assert "THUDM/ImageReward" in proc.stderr and "test_images.zip" in proc.stderr
    assert (f"test.json  <-  https://raw.githubusercontent.com/THUDM/ImageReward/{IMAGEREWARD_TEST_JSON.revision}/"
            f"data/test.json (sha256 {IMAGEREWARD_TEST_JSON.sha256})") in proc.stderr
