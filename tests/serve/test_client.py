"""The client: retries (5xx and connection errors, never 4xx) against a tiny local server, and
the Flow-GRPO adapter against the real server (numpy, PIL and torch batches) and in-process."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("serve")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from prefbench.api import ScoringError, load_scorer  # noqa: E402
from prefbench.serve import Client, ServeError, batch_to_pil, flow_grpo_reward  # noqa: E402
from tests.fixtures.serve import ServerProcess, png  # noqa: E402


class _Flaky(BaseHTTPRequestHandler):
    """Answers the first ``fail`` requests with ``status``, then a one-image score."""

    counter: dict = {}

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        self.counter["n"] += 1
        if self.counter["n"] <= self.counter["fail"]:
            status, body = self.counter["status"], {"error": "busy, try later"}
        else:
            status, body = 200, {"items": [{"scores": [0.25], "statuses": ["ok"], "details": [{}]}]}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    counter = {"n": 0, "fail": 0, "status": 503}
    handler = type("Handler", (_Flaky,), {"counter": counter})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", counter
    server.shutdown()
    server.server_close()


def test_retries_5xx_with_backoff(flaky):
    url, counter = flaky
    counter["fail"] = 2
    with Client(url, retries=3, backoff=0.01) as client:
        assert client.score("x", [png(1)]) == [0.25]
    assert counter["n"] == 3


def test_gives_up_after_the_retries(flaky):
    url, counter = flaky
    counter["fail"], counter["status"] = 100, 500
    with Client(url, retries=2, backoff=0.01) as client, pytest.raises(ServeError, match="after 3 attempts") as err:
        client.score("x", [png(1)])
    assert counter["n"] == 3 and err.value.status == 500


def test_never_retries_a_4xx(flaky):
    url, counter = flaky
    counter["fail"], counter["status"] = 100, 422
    with Client(url, retries=3, backoff=0.01) as client, pytest.raises(ServeError, match="busy, try later") as err:
        client.score("x", [png(1)])
    assert counter["n"] == 1 and err.value.status == 422


def test_retries_connection_errors():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with Client(f"http://127.0.0.1:{port}", retries=2, backoff=0.01) as client, pytest.raises(ServeError) as err:
        client.health()
    assert "ConnectError" in str(err.value) and "after 3 attempts" in str(err.value)
    assert time.monotonic() - start < 10


def test_bad_image_types_fail_before_sending(flaky):
    url, counter = flaky
    with Client(url) as client:
        with pytest.raises(Exception, match="expected a path, PIL image or bytes"):
            client.score("x", [123])
        with pytest.raises(Exception, match="must be a list"):
            client.score("x", png(1))
    assert counter["n"] == 0


# -- Flow-GRPO ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def random_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-client")
    server = ServerProcess(["--scorer", "random", "--log-level", "warning"], tmp / "server.log",
                           {"PREFBENCH_CACHE": str(tmp / "cache")})
    yield server
    server.stop()


PROMPTS = ["a red cube", "a red cube", "two cats", "two cats"]


def _batch() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)


def _expected(pils, grouped: bool = True) -> list[float]:
    """The in-process API's scores: a prompt's images as one item (grouped) or one item each.
    (The random scorer keys its numbers by the item's content, so the grouping matters.)"""
    with load_scorer("random") as api:
        if grouped:
            return api.score(PROMPTS[0], pils[:2]) + api.score(PROMPTS[2], pils[2:])
        return [api.score(p, [im])[0] for p, im in zip(PROMPTS, pils)]


def test_flow_grpo_numpy_and_pil_batches(random_server):
    batch = _batch()
    pils = [Image.fromarray(a) for a in batch]
    reward = flow_grpo_reward(random_server.url)
    scores, details = reward(batch, PROMPTS, {})
    assert scores == _expected(pils)
    assert details["statuses"] == ["ok"] * 4
    assert reward(pils, PROMPTS, None)[0] == scores
    assert flow_grpo_reward(random_server.url, group_by_prompt=False)(pils, PROMPTS, {})[0] == _expected(pils, False)
    with pytest.raises(Exception, match="one prompt per image"):
        reward(batch, PROMPTS[:3], {})


def test_flow_grpo_torch_tensor_batch(random_server):
    torch = pytest.importorskip("torch")
    batch = _batch()
    tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0  # (B, C, H, W) in [0, 1]
    # Flow-GRPO's own conversion
    pils = [Image.fromarray(a) for a in (tensor * 255).round().clamp(0, 255).to(torch.uint8).numpy().transpose(0, 2, 3, 1)]
    assert [np.asarray(p).tolist() for p in batch_to_pil(tensor)] == [np.asarray(p).tolist() for p in pils]
    scores, _ = flow_grpo_reward(Client(random_server.url))(tensor, PROMPTS, {})
    assert scores == _expected(pils)
    assert flow_grpo_reward(random_server.url)(tensor.mul(255).to(torch.uint8), PROMPTS, {})[0] == scores


def test_flow_grpo_failed_image(random_server):
    pils = [Image.fromarray(a) for a in _batch()]
    images = [pils[0], b"not an image", pils[2], pils[3]]
    with pytest.raises(ScoringError, match="image 1"):
        flow_grpo_reward(random_server.url)(images, PROMPTS, {})
    scores, details = flow_grpo_reward(random_server.url, on_error="nan")(images, PROMPTS, {})
    assert math.isnan(scores[1]) and details["statuses"][1] == "error" and details["errors"][1]
    assert scores[2:] == _expected(pils)[2:]  # the other prompt's group is untouched


def test_flow_grpo_groups_a_prompts_images_for_a_pairwise_scorer():
    """In-process app (no subprocess): with group_by_prompt a GRPO group's images are one item,
    so the pairwise scorer compares them with each other, as load_scorer(...).score does."""
    from starlette.testclient import TestClient

    from prefbench.serve import create_app

    pils = [Image.fromarray(a) for a in _batch()]
    with load_scorer("anchor_pairwise", on_error="nan") as scorer, TestClient(create_app(scorer)) as http:
        client = Client("http://testserver")
        client._http = http
        scores, _ = flow_grpo_reward(client, mode="round_robin")(pils, PROMPTS, {})
        expected = (scorer.score(PROMPTS[0], pils[:2], mode="round_robin")
                    + scorer.score(PROMPTS[2], pils[2:], mode="round_robin"))
        assert scores == pytest.approx(expected, abs=1e-6)
        assert scores[0] + scores[1] == pytest.approx(1.0)  # two images: win rates sum to 1
