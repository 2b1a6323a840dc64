"""The reward server as users run it: ``prefbench serve`` in a subprocess on 127.0.0.1.

Scores equal the in-process API's; every kind of bad input gets a 4xx with a message and the
server keeps serving; the token guards everything but /health and is never shown; a client that
leaves mid-request harms no one else; /metrics is Prometheus text."""

from __future__ import annotations

import math
import socket
import threading
import time

import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("serve")

import httpx  # noqa: E402

from prefbench.api import ScoringError, load_scorer  # noqa: E402
from prefbench.serve import Client, ServeError  # noqa: E402
from tests.fixtures.serve import ServerProcess, b64, png, png_bomb  # noqa: E402

TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def random_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-random")
    server = ServerProcess(["--scorer", "random", "--max-images", "8", "--max-body-mb", "1", "--max-pixels", "1000000"],
                           tmp / "server.log", {"PREFBENCH_CACHE": str(tmp / "cache")})
    yield server
    server.stop()
    assert "Traceback" not in server.text()


@pytest.fixture(scope="module")
def clip_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-clip")
    server = ServerProcess(["--scorer", "clip", "--token-env", "PREFBENCH_TEST_TOKEN", "--max-wait-ms", "50"],
                           tmp / "server.log", {"PREFBENCH_CACHE": str(tmp / "cache"), "PREFBENCH_TEST_TOKEN": TOKEN})
    yield server
    server.stop()
    assert "Traceback" not in server.text()
    assert TOKEN not in server.text()


@pytest.fixture(scope="module")
def clip_api():
    with load_scorer("clip") as scorer:
        yield scorer


def _still_serves(server) -> None:
    assert server.alive()
    r = httpx.post(server.url + "/v1/score", json={"prompt": "a cat", "images": [b64(png(1))]}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["statuses"] == ["ok"]


def test_random_scores_equal_the_api(random_server, tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(png(3))
    from PIL import Image

    images = [png(1), path, Image.open(path)]
    with Client(random_server.url) as client, load_scorer("random") as api:
        assert client.score("a red cube", images) == api.score("a red cube", images)
        items = [("a", [png(1), png(2)]), {"prompt": "b", "images": [png(4)]}]
        remote, local = client.score_items(items), api.score_items(items)
        assert [r.scores for r in remote] == [s.scores for s in local]
        assert [r.item_id for r in remote] == [s.item_id for s in local]
        assert client.rank("a red cube", images) == api.rank("a red cube", images)
        assert client.health() == {"status": "ok", "scorer": "random"}


def test_clip_scores_equal_the_api_under_concurrency(clip_server, clip_api):
    """Concurrent requests land in shared micro-batches; every score equals the in-process one."""
    requests = [(f"prompt {n}", [png(10 * n + k) for k in range(1 + n % 3)]) for n in range(8)]
    expected = [clip_api.score(p, imgs) for p, imgs in requests]
    got: dict[int, list[float]] = {}
    together = threading.Barrier(len(requests))

    def one(n):
        with Client(clip_server.url, token=TOKEN) as client:
            together.wait(30)
            got[n] = client.score(*requests[n])

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(got) == list(range(len(requests)))
    for n, scores in got.items():
        assert scores == pytest.approx(expected[n], abs=1e-5)
    text = httpx.get(clip_server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    batches = _samples(text)
    assert batches[("prefbench_batch_images_count", ())] < len(requests)  # some requests shared a batch


def _samples(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


BAD = [
    ("not JSON", {"content": b"{not json"}, 400, "not JSON"),
    ("a JSON list", {"json": [1, 2]}, 400, "JSON object"),
    ("deeply nested JSON", {"content": b"[" * 100_000}, 400, "nested"),
    ("no prompt", {"json": {"images": [b64(png(1))]}}, 400, "prompt"),
    ("no images", {"json": {"prompt": "x", "images": []}}, 400, "images"),
    ("bad base64", {"json": {"prompt": "x", "images": ["not*base64!"]}}, 400, "base64"),
    ("a number as image", {"json": {"prompt": "x", "images": [7]}}, 400, "base64"),
    ("too many images", {"json": {"prompt": "x", "images": [b64(png(1))] * 9}}, 422, "too many images"),
    ("over max pixels", {"json": {"prompt": "x", "images": [b64(png_bomb(1001, 1000))]}}, 422, "1001x1000"),
    ("an image bomb", {"json": {"prompt": "x", "images": [b64(png_bomb(20000, 20000))]}}, 422, "image"),
    ("a big body", {"json": {"prompt": "x" * (1536 * 1024), "images": [b64(png(1))]}}, 413, "limit"),
    ("unknown mode", {"json": {"prompt": "x", "images": [b64(png(1))], "mode": "best"}}, 400, "mode"),
    ("round_robin, pointwise", {"json": {"prompt": "x", "images": [b64(png(1))] * 2, "mode": "round_robin"}}, 400,
     "pairwise"),
    ("items and prompt", {"json": {"prompt": "x", "items": []}}, 400, "not both"),
    ("empty items", {"json": {"items": []}}, 400, "items"),
]


@pytest.mark.parametrize("what, request_kwargs, status, message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_a_4xx_with_a_message(random_server, what, request_kwargs, status, message):
    r = httpx.post(random_server.url + "/v1/score", timeout=30, **request_kwargs)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    _still_serves(random_server)


def test_unknown_path_and_method(random_server):
    r = httpx.get(random_server.url + "/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]
    r = httpx.get(random_server.url + "/v1/score")
    assert r.status_code == 405 and r.json()["error"]


def test_an_undecodable_image_gets_its_own_error(random_server):
    r = httpx.post(random_server.url + "/v1/score", json={"prompt": "x", "images": [b64(png(1)), b64(b"hello")]})
    body = r.json()
    assert r.status_code == 200
    assert body["statuses"] == ["ok", "error"] and body["scores"][1] is None
    assert "decodable" in body["details"][1]["error"]
    with Client(random_server.url) as client:
        with pytest.raises(ScoringError, match="image 1"):
            client.score("x", [png(1), b"hello"])
        scores = client.score("x", [png(1), b"hello"], on_error="nan")
        assert math.isfinite(scores[0]) and math.isnan(scores[1])
        with pytest.raises(ServeError) as err:  # a 4xx is not retried: it raises at once
            client.score("x", [png(1)] * 9)
        assert err.value.status == 422


def test_token(clip_server):
    url = clip_server.url
    body = {"prompt": "x", "images": [b64(png(1))]}
    r = httpx.post(url + "/v1/score", json=body)
    assert r.status_code == 401 and "bearer token" in r.json()["error"]
    r = httpx.post(url + "/v1/score", json=body, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"] == "wrong token"
    assert httpx.get(url + "/metrics").status_code == 401
    assert httpx.get(url + "/v1/info").status_code == 401
    assert httpx.get(url + "/health").status_code == 200
    with Client(url, token="wrong", retries=3, backoff=5) as client:
        start = time.monotonic()
        with pytest.raises(ServeError, match="wrong token"):
            client.score("x", [png(1)])
        assert time.monotonic() - start < 4  # no retry, no backoff
    with Client(url, token=TOKEN) as client:
        info = client.info()
        assert TOKEN not in repr(client)
    assert info["scorer"] == "clip" and info["model"]["id"] == "prefbench-demo/clip"
    assert info["server"]["auth"] is True and "bundled" in info["note"]
    assert {"python", "prefbench"} <= set(info["versions"])
    assert TOKEN not in str(info)
    assert TOKEN not in clip_server.text()


def test_a_client_that_leaves_mid_request_harms_no_one(clip_server, clip_api):
    """Raw sockets send big requests and hang up at once; meanwhile ordinary clients get their
    scores. Each request that left is either dropped (before or during its batch) or answered to
    nobody: none is lost from the count, none disturbs another. (test_batcher.py checks, in
    process, that a request dropped before its batch is never scored.)"""
    import json

    auth = {"Authorization": f"Bearer {TOKEN}"}

    def score_counts() -> tuple[float, float]:
        m = _samples(httpx.get(clip_server.url + "/metrics", headers=auth).text)
        answered = sum(v for (name, labels), v in m.items()
                       if name == "prefbench_requests_total" and ("endpoint", "/v1/score") in labels)
        return answered, m.get(("prefbench_requests_dropped_total", (("reason", "disconnected"),)), 0.0)

    answered0, dropped0 = score_counts()
    big = json.dumps({"prompt": "leaving", "images": [b64(png(100 + k, size=96)) for k in range(24)]}).encode()
    host, port = clip_server.url.removeprefix("http://").split(":")
    head = (f"POST /v1/score HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(big)}\r\n\r\n").encode()

    def leave():
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(head + big)

    leavers = [threading.Thread(target=leave) for _ in range(3)]
    for t in leavers:
        t.start()
    requests = [(f"staying {n}", [png(200 + n), png(300 + n)]) for n in range(4)]
    with Client(clip_server.url, token=TOKEN) as client:
        got = [client.score(p, imgs) for p, imgs in requests]
    for t in leavers:
        t.join(30)
    for (p, imgs), scores in zip(requests, got):
        assert scores == pytest.approx(clip_api.score(p, imgs), abs=1e-5)
    deadline = time.monotonic() + 60
    while True:  # every request is accounted for: 4 answered + 3 answered-to-nobody or dropped (499)
        answered, dropped = score_counts()
        if answered - answered0 == 7 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answered - answered0 == 7, (answered, dropped)
    assert dropped - dropped0 <= 3
    assert clip_server.alive()
    _still_serves_with_token(clip_server)


def _still_serves_with_token(server) -> None:
    with Client(server.url, token=TOKEN) as client:
        assert client.score("a cat", [png(1)])


def test_metrics_are_prometheus_text(random_server):
    with Client(random_server.url) as client:
        client.score("x", [png(1), png(2)])
        text = client.metrics()
    samples = _samples(text)
    assert samples[("prefbench_requests_total", (("code", "200"), ("endpoint", "/v1/score")))] >= 1
    assert samples[("prefbench_images_total", (("status", "ok"),))] >= 2
    for q in ("0.5", "0.95", "0.99"):
        assert samples[("prefbench_request_latency_seconds", (("quantile", q),))] > 0
    assert ("prefbench_queue_depth", ()) in samples
    assert ("prefbench_batch_images_bucket", (("le", "+Inf"),)) in samples
    assert not any(name.endswith("_created") for name, _ in samples)


def test_expected_rating_on_the_bundled_model(tmp_path):
    server = ServerProcess(["--scorer", "expected_rating", "--log-level", "warning"], tmp_path / "server.log",
                           {"PREFBENCH_CACHE": str(tmp_path / "cache")})
    try:
        images = [png(1, size=64), png(2, size=64)]
        with Client(server.url) as client, load_scorer("expected_rating") as api:
            assert client.score("two red circles", images) == pytest.approx(api.score("two red circles", images),
                                                                            abs=1e-5)
            assert client.info()["model"]["id"] == "prefbench-demo/rating"
    finally:
        assert server.stop() == 0


def test_cli_refuses_bad_settings_before_loading(tmp_path):
    from tests.fixtures.cli import run_cli

    proc = run_cli(["serve", "--scorer", "random", "--token-env", "PREFBENCH_TEST_UNSET_TOKEN"], timeout=60,
                   env_extra={"PREFBENCH_TEST_UNSET_TOKEN": ""})
    assert proc.returncode == 2 and "PREFBENCH_TEST_UNSET_TOKEN" in proc.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = run_cli(["serve", "--scorer", "random", "--port", port], timeout=60)
    assert proc.returncode == 2 and "cannot listen" in proc.stderr


def test_the_documented_answer_is_the_servers(random_server):
    """docs/serve.md's example answer (an item whose second image is not an image) has the fields,
    statuses and per-image details the server really sends (issue 30 item 10)."""
    import json
    import re

    from tests.fixtures.cli import REPO

    doc = (REPO / "docs" / "serve.md").read_text()
    block = doc[doc.index("It is answered with"):]
    documented = json.loads(re.search(r"```json\n(.*?)```", block, flags=re.S).group(1))
    r = httpx.post(random_server.url + "/v1/score",
                   json={"prompt": "two red circles", "images": [b64(png(1)), b64(b"not an image")], "mode": "anchor"})
    assert r.status_code == 200, r.text
    real = r.json()
    assert list(real) == list(documented)
    assert real["statuses"] == documented["statuses"] and real["details"] == documented["details"]
    assert real["mode"] == documented["mode"] and real["scores"][1] is None is documented["scores"][1]
    assert re.fullmatch(r"[0-9a-f]{16}", real["item_id"]) and re.fullmatch(r"[0-9a-f]{16}", documented["item_id"])
