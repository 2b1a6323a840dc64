"""Issue 31 items 8 and 11, the client: ``timeout`` is the deadline of a whole call (a server that
drips its answer cannot hold it), and the default retries ride through a server restart (a real
``prefbench serve`` stopped and started again on the same port, 127.0.0.1)."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("serve")

from prefbench.serve import Client, ServeError  # noqa: E402
from tests.fixtures.serve import ServerProcess, png  # noqa: E402


class _Drip(BaseHTTPRequestHandler):
    """Answers 200 with a 10,000-byte JSON body sent one byte every 0.2 s (stops when the client
    leaves, or after 60 bytes: the loop ends by itself)."""

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "10000")
        self.end_headers()
        try:
            for _ in range(60):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args):
        pass


def test_a_dripping_answer_cannot_hold_a_call_past_its_timeout():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = Client(f"http://127.0.0.1:{server.server_address[1]}", timeout=2)
        start = time.perf_counter()
        with pytest.raises(ServeError, match="no whole answer within the call's timeout of 2 s"):
            client.score("p", [png(1)])
        assert time.perf_counter() - start < 3.0
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_default_retries_ride_through_a_server_restart(tmp_path):
    port = _free_port()
    first = ServerProcess(["--scorer", "random", "--port", port, "--log-level", "warning"], tmp_path / "a.log")
    client = Client(first.url, backoff=0.2, max_backoff=1.0)  # the default retry_for: 120 s
    assert len(client.score("p", [png(1)])) == 1
    first.stop()
    result: dict = {}

    def call():
        try:
            result["scores"] = client.score("p", [png(2), png(3)])
        except Exception as exc:  # noqa: BLE001 - asserted below
            result["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(3)  # the server is down for at least 3 s (its restart takes a few more)
    assert caller.is_alive() and not result
    second = ServerProcess(["--scorer", "random", "--port", port, "--log-level", "warning"], tmp_path / "b.log")
    try:
        caller.join(timeout=60)
        assert not caller.is_alive()
        assert "error" not in result, result.get("error")
        assert len(result["scores"]) == 2
    finally:
        second.stop()


def test_retry_for_zero_gives_up_at_once(tmp_path):
    port = _free_port()
    client = Client(f"http://127.0.0.1:{port}", retry_for=0)
    start = time.perf_counter()
    with pytest.raises(ServeError, match=r"ConnectError.*after 1 attempts"):
        client.health()
    assert time.perf_counter() - start < 2


def test_flow_grpo_splits_requests_by_bytes_and_sends_jpeg(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    from prefbench.api import load_scorer
    from prefbench.serve import flow_grpo_reward

    server = ServerProcess(["--scorer", "random", "--max-body-mb", "1", "--log-level", "warning"], tmp_path / "s.log")
    try:
        rng = np.random.default_rng(0)
        batch = rng.integers(0, 256, (8, 256, 256, 3), dtype=np.uint8)  # ~200 KB of PNG each: 2 MB in all
        prompts = [f"prompt {i}" for i in range(8)]
        scores, details = flow_grpo_reward(server.url, retry_for=0, max_request_mb=0.9)(batch, prompts, {})
        assert details["statuses"] == ["ok"] * 8  # one request would be 413 (the body limit is 1 MiB)
        jpeg_reward = flow_grpo_reward(server.url, retry_for=0, image_format="jpeg", jpeg_quality=80)
        jpeg_scores, _ = jpeg_reward(batch, prompts, {})
        with load_scorer("random") as api:  # the random scorer's score is a function of the bytes sent
            for k in (0, 7):
                buf = io.BytesIO()
                Image.fromarray(batch[k]).save(buf, format="JPEG", quality=80)
                assert jpeg_scores[k] == pytest.approx(api.score(prompts[k], [buf.getvalue()])[0])
                buf = io.BytesIO()
                Image.fromarray(batch[k]).save(buf, format="PNG", compress_level=1)
                assert scores[k] == pytest.approx(api.score(prompts[k], [buf.getvalue()])[0])
    finally:
        server.stop()
