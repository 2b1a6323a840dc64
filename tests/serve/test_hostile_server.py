"""Issue 31 on a real ``prefbench serve`` subprocess (127.0.0.1): a client's bad image (a DDS
file Pillow raises NotImplementedError on, a SPIDER file it raises AttributeError on) fails only
itself, never the images of another client batched with it; a plugin's NaN/inf scores are
per-image errors, through the client and ``flow_grpo_reward``."""

from __future__ import annotations

import math
import os
import re
import threading
import time

import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("serve")

from prefbench.api import ScoringError  # noqa: E402
from prefbench.serve import Client, flow_grpo_reward  # noqa: E402
from tests.fixtures.hostile import (  # noqa: E402
    INF_RED,
    NAN_RED,
    RAISE_RED,
    bad_output_plugin,
    dds_unsupported,
    solid_png,
    spider_attribute_error,
)
from tests.fixtures.serve import ServerProcess, png  # noqa: E402


def _batches_with_two_requests(client: Client) -> int:
    text = client.metrics()
    count = float(re.search(r"^prefbench_batch_requests_count (\S+)", text, re.M).group(1))
    single = float(re.search(r'^prefbench_batch_requests_bucket\{le="1\.0"\} (\S+)', text, re.M).group(1))
    return int(count - single)


def test_a_bad_image_fails_only_itself_across_batched_clients(tmp_path):
    server = ServerProcess(["--scorer", "random", "--max-wait-ms", "400", "--log-level", "warning"],
                           tmp_path / "server.log")
    try:
        client = Client(server.url, retries=0, timeout=60, on_error="nan")
        results: dict[str, list] = {}

        def send(name, images):
            results[name] = client.score_items([("a prompt", images)])[0]

        for _round in range(5):  # until one round lands in one batch (400 ms window: the first does)
            threads = [threading.Thread(target=send, args=("innocent", [png(1), png(2), png(3)])),
                       threading.Thread(target=send, args=("culprit", [dds_unsupported(), png(4),
                                                                         spider_attribute_error()]))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert results["innocent"].statuses == ["ok", "ok", "ok"], results["innocent"].errors
            assert results["culprit"].statuses == ["error", "ok", "error"]
            assert "NotImplementedError" in results["culprit"].errors[0]
            assert "AttributeError" in results["culprit"].errors[2]
            if _batches_with_two_requests(client):
                break
        assert _batches_with_two_requests(client) >= 1, "the two clients were never batched together"
        assert server.alive()
    finally:
        server.stop()


@pytest.fixture
def bad_output_server(tmp_path):
    root = bad_output_plugin(tmp_path / "plugin")
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    server = ServerProcess(["--scorer", "bad_output", "--log-level", "warning"], tmp_path / "server.log",
                           env_extra={"PYTHONPATH": path})
    yield server
    server.stop()


def test_non_finite_scores_are_errors_through_the_server_and_flow_grpo(bad_output_server):
    from PIL import Image

    client = Client(bad_output_server.url, retries=0, timeout=60, on_error="nan")
    item = client.score_items([("p", [solid_png((90, 0, 0)), solid_png((NAN_RED, 0, 0)), solid_png((INF_RED, 0, 0)),
                                      solid_png((RAISE_RED, 0, 0))])])[0]
    assert item.statuses == ["ok", "error", "error", "error"]
    assert item.scores[0] == pytest.approx(90 / 255) and item.scores[1:] == [None, None, None]
    assert "non-finite score (nan)" in item.errors[1] and "RuntimeError" in item.errors[3]

    images = [Image.new("RGB", (8, 8), (r, 0, 0)) for r in (120, NAN_RED, 60)]
    reward = flow_grpo_reward(bad_output_server.url, retries=0)
    with pytest.raises(ScoringError, match="non-finite score"):
        reward(images, ["x", "x", "y"], {})
    scores, details = flow_grpo_reward(bad_output_server.url, retries=0, on_error="nan")(images, ["x", "x", "y"], {})
    assert scores[0] == pytest.approx(120 / 255) and math.isnan(scores[1]) and scores[2] == pytest.approx(60 / 255)
    assert details["statuses"] == ["ok", "error", "ok"]


def _post(url, body: bytes, timeout=30):
    import httpx

    return httpx.post(url + "/v1/score", content=body, headers={"Content-Type": "application/json"}, timeout=timeout)


def test_request_budgets_pixels_jpeg_scans_and_a_slow_body(tmp_path):
    import json
    import socket
    import time

    from tests.fixtures.hostile import jpeg_scan_bomb
    from tests.fixtures.serve import b64, png_bomb

    server = ServerProcess(["--scorer", "random", "--body-timeout", "2", "--log-level", "warning"],
                           tmp_path / "server.log")
    try:
        # 64 images whose headers declare 4096x4096 each: 1.07e9 pixels, over the 64*1024*1024 default
        body = json.dumps({"prompt": "p", "images": [b64(png_bomb(4096, 4096))] * 64}).encode()
        start = time.perf_counter()
        answer = _post(server.url, body)
        assert answer.status_code == 422 and "too many pixels" in answer.json()["error"]
        assert time.perf_counter() - start < 10
        answer = _post(server.url, json.dumps({"prompt": "p", "images": [b64(jpeg_scan_bomb())]}).encode())
        assert answer.status_code == 422 and "2010 scans exceeds the limit of 64" in answer.json()["error"]

        # a body dripped at ~4 bytes/s: 408 at the 2 s deadline, while another client is answered
        host, port = server.url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)), timeout=10)
        slow.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        start = time.perf_counter()
        client = Client(server.url, retries=0, timeout=10)
        answered = None
        received = b""
        slow.settimeout(0.25)
        for _ in range(40):  # at most ~10 s
            try:
                slow.sendall(b"{")
            except OSError:
                pass
            try:
                chunk = slow.recv(4096)
                received += chunk
                if not chunk or b"\r\n\r\n" in received:
                    break
            except TimeoutError:
                pass
            if answered is None:
                answered = client.score("p", [png(1)])
        slow.close()
        elapsed = time.perf_counter() - start
        assert received.startswith(b"HTTP/1.1 408"), received[:200]
        assert b"did not arrive within the server's 2 s" in received or b"408" in received
        assert 1.5 < elapsed < 6, elapsed
        assert answered is not None and len(answered) == 1
        assert server.alive()
    finally:
        server.stop()


def test_round_robin_comparisons_are_bounded(tmp_path, with_plugin):
    import json

    from tests.fixtures.serve import b64

    path = os.pathsep.join(filter(None, [str(with_plugin), os.environ.get("PYTHONPATH")]))
    server = ServerProcess(["--scorer", "coin_pairwise", "--log-level", "warning"], tmp_path / "server.log",
                           env_extra={"PYTHONPATH": path})
    try:
        forty = json.dumps({"prompt": "p", "mode": "round_robin", "images": [b64(png(k, 8)) for k in range(40)]})
        answer = _post(server.url, forty.encode())
        assert answer.status_code == 422 and "too many comparisons: 780" in answer.json()["error"]
        thirty_two = json.dumps({"prompt": "p", "mode": "round_robin", "images": [b64(png(k, 8)) for k in range(32)]})
        answer = _post(server.url, thirty_two.encode(), timeout=120)
        assert answer.status_code == 200 and answer.json()["statuses"] == ["ok"] * 32
    finally:
        server.stop()


def test_port_out_of_range_is_refused(tmp_path):
    from tests.fixtures.cli import run_cli

    proc = run_cli(["serve", "--scorer", "random", "--port", "70000"], timeout=60)
    assert proc.returncode == 2 and "--port: must be 0..65535" in proc.stderr
    from prefbench.errors import UsageError
    from prefbench.serve.server import bind

    with pytest.raises(UsageError, match="--port must be 0..65535"):
        bind("127.0.0.1", 70000)


def test_sigterm_answers_queued_requests_503_and_exits_within_its_grace(tmp_path, with_plugin):
    import json
    import signal
    import time

    import httpx

    from tests.fixtures.serve import b64

    path = os.pathsep.join(filter(None, [str(with_plugin), os.environ.get("PYTHONPATH")]))
    server = ServerProcess(["--scorer", "sleepy", "-S", "delay=6", "--max-batch-size", "1", "--max-wait-ms", "0",
                            "--shutdown-grace", "1", "--log-level", "warning"], tmp_path / "server.log",
                           env_extra={"PYTHONPATH": path})
    answers: dict[int, httpx.Response | Exception] = {}

    def send(n):
        body = json.dumps({"prompt": f"p{n}", "images": [b64(png(n))]})
        try:
            answers[n] = httpx.post(server.url + "/v1/score", content=body, timeout=30)
        except httpx.HTTPError as exc:
            answers[n] = exc

    try:
        threads = [threading.Thread(target=send, args=(n,)) for n in range(3)]
        for t in threads:  # request 0 is scored (6 s), 1 and 2 wait behind it
            t.start()
            time.sleep(0.3)
        time.sleep(0.5)
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=30)
        waited = time.monotonic() - start
        server.proc.wait(timeout=30)
        exited = time.monotonic() - start
        statuses = {n: getattr(a, "status_code", repr(a)) for n, a in answers.items()}
        assert statuses == {0: 503, 1: 503, 2: 503}, (statuses, server.text()[-2000:])
        for a in answers.values():
            assert a.headers["retry-after"] and "shutting down" in a.json()["error"]
        assert "grace of 1 s" in answers[0].json()["error"]
        assert waited < 4 and exited < 6, (waited, exited)  # the scoring call (6 s) is not waited for
    finally:
        server.stop()


def test_connections_past_the_limit_get_503_and_the_server_recovers(tmp_path):
    import socket

    import httpx

    server = ServerProcess(["--scorer", "random", "--max-connections", "3", "--log-level", "warning"],
                           tmp_path / "server.log")
    host, port = server.url.removeprefix("http://").split(":")
    held = []
    try:
        for _ in range(3):  # three clients that open a connection and send half a request line
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(b"POST /v1/sc")
            held.append(sock)
        time.sleep(0.3)
        answer = httpx.get(server.url + "/health", timeout=10)
        assert answer.status_code == 503
        for sock in held:
            sock.close()
        held.clear()
        for _ in range(50):  # until the server has seen them go (bounded: ~5 s)
            if httpx.get(server.url + "/health", timeout=10).status_code == 200:
                break
            time.sleep(0.1)
        assert Client(server.url, retry_for=0).score("p", [png(1)])
    finally:
        for sock in held:
            sock.close()
        server.stop()


def _exif_full_of_sos(size: int = 256) -> bytes:
    """A progressive JPEG written by Pillow whose EXIF (APP1) payload is 30,000 ``FF DA`` pairs:
    bytes that look like start-of-scan markers but lie inside a segment's length."""
    import io

    from PIL import Image

    exif = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00" + b"\xff\xda" * 30000
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (9, 99, 199)).save(buf, "JPEG", progressive=True, exif=exif)
    return buf.getvalue()


def test_jpeg_scans_are_counted_as_a_decoder_reads_them(tmp_path):
    import io
    import json

    from prefbench.data.images import count_jpeg_scans, decode_image
    from tests.fixtures.hostile import jpeg_scan_bomb
    from tests.fixtures.serve import b64

    data = _exif_full_of_sos()
    assert data.count(b"\xff\xda") == 30010  # what a byte count reads: 30,000 of them in the EXIF
    assert count_jpeg_scans(io.BytesIO(data)) == 10  # the real scans of a progressive JPEG
    path = tmp_path / "exif.jpg"
    path.write_bytes(data)
    with path.open("rb") as fp:  # a file is mapped, not read
        assert count_jpeg_scans(fp) == 10 and fp.tell() == 0
    assert decode_image(io.BytesIO(data)).size == (256, 256)
    bomb = jpeg_scan_bomb()
    assert count_jpeg_scans(io.BytesIO(bomb)) == 2010

    server = ServerProcess(["--scorer", "random", "--log-level", "warning"], tmp_path / "server.log")
    try:
        answer = _post(server.url, json.dumps({"prompt": "p", "images": [b64(data), b64(png(1))]}).encode())
        assert answer.status_code == 200 and answer.json()["statuses"] == ["ok", "ok"], answer.text
        answer = _post(server.url, json.dumps({"prompt": "p", "images": [b64(bomb)]}).encode())
        assert answer.status_code == 422 and "2010 scans exceeds the limit of 64" in answer.json()["error"]
    finally:
        server.stop()
