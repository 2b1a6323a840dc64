"""The OpenAI backend against a local HTTP server that fails on purpose: retries with backoff on
429/5xx/timeouts, no retry on 4xx, bounded concurrency, several servers, API-key redaction,
and the scorers through the real runner and CLI (soft scores from the served log-probabilities,
missing answer tokens reported, failed images stored as retryable errors and retried)."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("openai")

from prefbench.engines.openai_client import ServerPool  # noqa: E402
from tests.fixtures.cli import run_cli  # noqa: E402
from tests.fixtures.openai_fakes import FakeServer, fake_logprobs  # noqa: E402

KEY = "sk-test-SECRET-0123456789"
PAYLOAD = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def pool(urls, **kw):
    kw.setdefault("backoff_initial", 0.01)
    kw.setdefault("backoff_max", 0.05)
    return ServerPool(urls if isinstance(urls, list) else [urls], KEY, **kw)


def test_retries_429_and_5xx_then_succeeds():
    with FakeServer(script=[429, 500, 503]) as srv:
        p = pool(srv.url, max_retries=4)
        try:
            (reply,) = p.chat_many([PAYLOAD])
        finally:
            p.close()
    assert reply.error is None and reply.attempts == 4
    assert reply.data["choices"][0]["message"]["content"].endswith("<answer>")
    u = p.usage.to_json()
    assert u["requests"] == 1 and u["attempts"] == 4 and u["retries"] == 3 and u["failed_requests"] == 0
    assert u["failed_attempts_by_status"] == {"429": 1, "500": 1, "503": 1}
    assert u["prompt_tokens"] == 50 and u["completion_tokens"] == 7
    assert len(srv.requests) == 4


def test_gives_up_after_the_last_retry_with_a_retryable_error():
    with FakeServer(default=502) as srv:
        p = pool(srv.url, max_retries=2)
        try:
            (reply,) = p.chat_many([PAYLOAD])
        finally:
            p.close()
    assert reply.data is None and reply.retryable and reply.attempts == 3
    assert "HTTP 502" in reply.error and "gave up after 3 attempts" in reply.error
    assert len(srv.requests) == 3


def test_client_errors_are_not_retried():
    with FakeServer(script=[400]) as srv:
        p = pool(srv.url, max_retries=4)
        try:
            (reply,) = p.chat_many([PAYLOAD])
        finally:
            p.close()
    assert reply.data is None and not reply.retryable and reply.attempts == 1 and "HTTP 400" in reply.error
    assert len(srv.requests) == 1


def test_request_timeout_is_retried_then_reported():
    with FakeServer(default=("sleep", 2.0)) as srv:
        p = pool(srv.url, timeout=0.3, max_retries=1)
        try:
            (reply,) = p.chat_many([PAYLOAD])
        finally:
            p.close()
    assert reply.data is None and reply.retryable and reply.attempts == 2
    assert "no complete answer within 0.3 s" in reply.error


def test_concurrency_is_bounded():
    with FakeServer(default=("sleep", 0.15)) as srv:
        p = pool(srv.url, max_concurrency=3)
        try:
            replies = p.chat_many([PAYLOAD] * 12)
        finally:
            p.close()
    assert all(r.error is None for r in replies)
    assert srv.max_in_flight == 3


def test_requests_spread_over_servers_and_a_dead_one_is_routed_around():
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/v1"
    dead.close()  # nothing listens there: connections are refused
    with FakeServer() as a, FakeServer() as b:
        p = pool([a.url, b.url])
        try:
            assert all(r.error is None for r in p.chat_many([PAYLOAD] * 8))
        finally:
            p.close()
        assert len(a.requests) == 4 and len(b.requests) == 4
        p = pool([dead_url, a.url], max_retries=2)
        try:
            replies = p.chat_many([PAYLOAD] * 4)
        finally:
            p.close()
    assert all(r.error is None for r in replies) and {r.server for r in replies} == {a.url}
    assert p.usage.to_json()["failed_attempts_by_status"] == {"connection": 2}


def test_api_key_is_sent_but_never_in_error_messages():
    with FakeServer(default="echo-auth") as srv:
        p = pool(srv.url, max_retries=1)
        try:
            (reply,) = p.chat_many([PAYLOAD])
        finally:
            p.close()
    assert srv.headers[0]["authorization"] == f"Bearer {KEY}"
    assert KEY not in reply.error and "Bearer ***" in reply.error


# -- the scorers through the runner and CLI ---------------------------------------------------

def _cli(srv_url, out, *extra, key=KEY):
    return run_cli(["run", "--scorer", "expected_rating", "--engine", "openai", "--base-url", srv_url,
                    "--model", "fake", "--dataset", "demo", "--limit", "3", "--out", out, "--no-progress",
                    "--json", "--api-key-env", "PREFBENCH_TEST_KEY", *extra],
                   env_extra={"PREFBENCH_TEST_KEY": key})


def _samples(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def _expected_rating(messages, scale=range(1, 6)) -> float:
    lps = fake_logprobs(messages)
    w = [math.exp(lps[str(r)]) for r in scale]
    return sum(r * x for r, x in zip(scale, w)) / sum(w)


def test_cli_expected_rating_scores_are_the_served_probabilities(tmp_path):
    out = tmp_path / "run"
    with FakeServer() as srv:
        proc = _cli(srv.url, out)
        assert proc.returncode == 0, proc.stderr
        answer_requests = [r for r in srv.requests if r.get("continue_final_message")]
    rows = _samples(out)
    assert rows and all(r["status"] == "ok" for r in rows)
    # one reasoning + one answer request per image; the soft score is the expected rating over
    # exactly the log-probabilities the server returned for that request
    assert len(answer_requests) == len(rows)
    assert all(r["logprob_token_ids"] == [ord(c) for c in "12345"] for r in answer_requests)
    expected = sorted(_expected_rating(r["messages"][:-1]) for r in answer_requests)
    assert sorted(r["score"] for r in rows) == pytest.approx(expected, abs=1e-9)
    for r in answer_requests:
        assert r["messages"][-1] == {"role": "assistant", "content": "<think>looks fine</think><answer>"}
        (image,) = [part for part in r["messages"][0]["content"] if part["type"] == "image_url"]
        assert image["image_url"]["url"].startswith("data:image/png;base64,")
    summary = json.loads(proc.stdout)
    record = json.loads((out / "run.json").read_text())
    usage = record["scorer_summary"]["engine"]["usage"]
    assert usage["requests"] == 2 * len(rows) and usage["prompt_tokens"] == 100 * len(rows)
    assert record["model"] == {"id": "fake", "revision": None, "backend": "openai"}
    assert record["scorer"]["engine"] == "openai" and summary["counts"]["ok"] == len(rows)
    # the key went to the server, never to the run folder
    for f in out.iterdir():
        assert KEY not in f.read_text()


def test_missing_answer_tokens_in_top_n_are_reported_not_invented(tmp_path):
    out = tmp_path / "run"
    with FakeServer(tokenize=False, top_n_digits=3) as srv:
        proc = _cli(srv.url, out, "-S", "top_logprobs=4")
        assert proc.returncode == 0, proc.stderr
        answer_requests = [r for r in srv.requests if r.get("continue_final_message")]
    rows = _samples(out)
    assert all(r["top_logprobs"] == 4 and "logprob_token_ids" not in r for r in answer_requests)
    for row in rows:
        (roll,) = row["detail"]["rollouts"]
        present = roll["answer_logprobs"]
        assert len(present) <= 3
        assert sorted(roll["missing_answer_tokens"]) == sorted(set("12345") - set(present))
        assert roll["mass_outside_top_logprobs"] > 0 and roll["top_logprobs_n"] == 4
        if not present:  # no rating token among the top-N: no score, and it says so
            assert row["status"] == "unparsed" and row["score"] is None
            assert row["error"].startswith("no answer token among the server's top 4")
            continue
        assert row["status"] == "ok"
        assert roll["missing_logprob_upper_bound"] <= min(present.values())
        # renormalised over the answer tokens the server returned, nothing else
        w = {int(t): math.exp(v) for t, v in present.items()}
        assert row["score"] == pytest.approx(sum(r * x for r, x in w.items()) / sum(w.values()), abs=1e-9)
    record = json.loads((out / "run.json").read_text())
    assert record["scorer_summary"]["engine"]["missing_answer_tokens"] == len(rows)
    assert record["counts"]["ok"] > 0 and record["counts"]["unparsed"] == record["scorer_summary"]["engine"]["no_answer_token"]


def test_failed_requests_are_retryable_errors_and_the_next_run_completes(tmp_path):
    out = tmp_path / "run"
    with FakeServer(default=503) as srv:
        proc = _cli(srv.url, out, "-S", "max_retries=1")
        assert proc.returncode == 1 and "no image scored" in proc.stderr, proc.stderr  # not "accuracy 0"
    rows = _samples(out)
    assert rows and all(r["status"] == "error" and r["retryable"] for r in rows)
    assert all("HTTP 503" in r["error"] and KEY not in r["error"] for r in rows)
    assert KEY not in proc.stdout + proc.stderr
    assert json.loads((out / "run.json").read_text())["status"] == "incomplete"
    with FakeServer() as srv:  # the server is back, on another port: the run resumes there
        proc = _cli(srv.url, out)
        assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["counts"]["ok"] == len(rows) and record["counts"]["error"] == 0


def test_engine_options_are_validated(tmp_path):
    proc = run_cli(["run", "--scorer", "random", "--engine", "openai", "--base-url", "http://127.0.0.1:9/v1",
                    "--out", tmp_path / "r"])
    assert proc.returncode == 2 and "--engine applies to the VLM scorers" in proc.stderr
    proc = run_cli(["run", "--scorer", "random", "--base-url", "http://127.0.0.1:9/v1", "--out", tmp_path / "r"])
    assert proc.returncode == 2 and "add --engine openai" in proc.stderr
    proc = run_cli(["run", "--scorer", "expected_rating", "--engine", "opneai", "--model", "m", "--out", tmp_path / "r"])
    assert proc.returncode == 2 and "unknown engine 'opneai'. Did you mean: openai?" in proc.stderr
    # --backend: the option's old name
    proc = run_cli(["run", "--scorer", "expected_rating", "--backend", "openai", "--model", "m", "--out", tmp_path / "r"])
    assert proc.returncode == 2 and "needs --base-url" in proc.stderr
    proc = run_cli(["run", "--scorer", "expected_rating", "--engine", "openai", "--model", "m", "--base-url",
                    "http://127.0.0.1:9/v1", "-S", "dtype=float16", "--out", tmp_path / "r"])
    assert proc.returncode == 2 and "no option(s) dtype" in proc.stderr
    proc = run_cli(["run", "--scorer", "expected_rating", "--engine", "openai", "--model", "m", "--base-url",
                    "http://127.0.0.1:9/v1", "--api-key-env", "PREFBENCH_SURELY_UNSET", "--out", tmp_path / "r"])
    assert proc.returncode == 2 and "PREFBENCH_SURELY_UNSET is not set" in proc.stderr


def test_cli_anchor_pairwise_sends_the_anchor_first_and_scores_p1(tmp_path):
    out = tmp_path / "run"
    with FakeServer() as srv:
        proc = run_cli(["run", "--scorer", "anchor_pairwise", "--engine", "openai", "--base-url", srv.url,
                        "--model", "fake", "--dataset", "demo", "--limit", "3", "--out", out, "--no-progress",
                        "--json", "--rollouts", "2"])
        assert proc.returncode == 0, proc.stderr
        answer_requests = [r for r in srv.requests if r.get("continue_final_message")]
    rows = _samples(out)
    anchors = [r for r in rows if r["detail"].get("anchor")]
    others = [r for r in rows if not r["detail"].get("anchor")]
    assert len(anchors) == 3 and all(r["score"] == 0.5 for r in anchors)
    assert len(answer_requests) == 2 * len(others)  # N-1 comparisons per item, 2 rollouts each
    p1 = []
    for r in answer_requests:
        assert r["logprob_token_ids"] == [ord("0"), ord("1")]
        lps = fake_logprobs(r["messages"][:-1])
        p1.append(math.exp(lps["1"]) / (math.exp(lps["0"]) + math.exp(lps["1"])))
    rollout_scores = sorted(s for row in others for s in row["detail"]["rollout_scores"])
    assert rollout_scores == pytest.approx(sorted(p1), abs=1e-9)
    # the shared part comes first: every comparison of an item opens with the same anchor image
    by_item: dict[str, set] = {}
    for r in answer_requests:
        urls = [part["image_url"]["url"] for part in r["messages"][0]["content"] if part["type"] == "image_url"]
        text = next(part["text"] for part in r["messages"][0]["content"] if part["type"] == "text")
        by_item.setdefault(text, set()).add(urls[0])
    assert len(by_item) == 3 and all(len(first) == 1 for first in by_item.values())
    record = json.loads((out / "run.json").read_text())
    assert record["scorer_summary"]["anchor_kv_prefix_sharing"] == "server prefix cache"
    assert record["metrics"]["brier"] is not None


def test_inline_answer_request_uses_only_standard_parameters(tmp_path):
    """answer_request=inline: one plain chat request per rollout (no vLLM extensions), the soft
    score read at the token after the rollout's own <answer>."""
    out = tmp_path / "run"
    with FakeServer(tokenize=False) as srv:
        proc = _cli(srv.url, out, "-S", "answer_request=inline")
        assert proc.returncode == 0, proc.stderr
        requests = list(srv.requests)
    rows = _samples(out)
    assert len(requests) == len(rows)
    standard = {"model", "messages", "max_tokens", "temperature", "top_p", "seed", "logprobs", "top_logprobs"}
    assert all(set(r) <= standard for r in requests)
    expected = sorted(_expected_rating(r["messages"]) for r in requests)
    assert all(r["status"] == "ok" for r in rows)
    assert sorted(r["score"] for r in rows) == pytest.approx(expected, abs=1e-9)
    (roll,) = rows[0]["detail"]["rollouts"]
    assert roll["answer_token_source"] == "top_logprobs=20 (inline)" and not roll.get("forced")


def test_credentials_in_base_url_are_never_recorded_or_printed(tmp_path):
    """http://user:secret@host/v1: the userinfo is redacted in run.json, samples and messages."""
    out = tmp_path / "run"
    with FakeServer() as srv:
        url = srv.url.replace("http://", "http://alice:s3cr3t-pw@")
        proc = _cli(url, out)
        assert proc.returncode == 0, proc.stderr
    for f in out.iterdir():
        text = f.read_text()
        assert "s3cr3t-pw" not in text and "alice" not in text, f.name
    assert "s3cr3t-pw" not in proc.stderr + proc.stdout
    down = _cli("http://bob:hunter2@127.0.0.1:9/v1", tmp_path / "down", "-S", "max_retries=0", "-S", "request_timeout=2")
    assert "hunter2" not in down.stderr + down.stdout
    for f in (tmp_path / "down").iterdir():
        assert "hunter2" not in f.read_text(), f.name
    rows = _samples(tmp_path / "down")
    assert rows and all(r["status"] == "error" and "***@127.0.0.1:9" in r["error"] for r in rows)


def test_request_timeout_is_a_deadline_not_a_per_read_timeout():
    """A server that drips a valid answer one byte every 0.2 s never idles past a per-read
    timeout; the deadline per attempt still cuts it off."""
    import time

    with FakeServer(default=("drip", 0.2)) as srv:
        p = pool(srv.url, timeout=1.0, max_retries=1)
        t0 = time.monotonic()
        try:
            (reply,) = p.chat_many([PAYLOAD])
        finally:
            p.close()
        took = time.monotonic() - t0
    assert reply.data is None and reply.retryable and reply.attempts == 2
    assert "no complete answer within 1 s" in reply.error
    assert took < 6, took  # two attempts of 1 s plus backoff, not the ~100 s the drip would take


def test_retry_after_is_honoured_and_capped():
    import time

    from prefbench.engines import openai_client

    with FakeServer(script=[("retry-after", 429, 1.2), ("retry-after", 503, 0)]) as srv:
        p = pool(srv.url, max_retries=3)
        t0 = time.monotonic()
        try:
            (reply,) = p.chat_many([PAYLOAD])
        finally:
            p.close()
    assert reply.data is not None and reply.attempts == 3
    assert time.monotonic() - t0 >= 1.2  # the server's wait, not the 0.05 s backoff cap
    assert openai_client.RETRY_AFTER_MAX == 60.0


@pytest.mark.parametrize("action", ["truncated", "no-choices"])
def test_a_malformed_200_is_retryable_and_recovers(action):
    with FakeServer(script=[action]) as srv:
        p = pool(srv.url, max_retries=2)
        try:
            (reply,) = p.chat_many([PAYLOAD])
        finally:
            p.close()
    assert reply.data is not None and reply.attempts == 2
    with FakeServer(default=action) as srv:
        p = pool(srv.url, max_retries=1)
        try:
            (reply,) = p.chat_many([PAYLOAD])
        finally:
            p.close()
    assert reply.data is None and reply.retryable, reply.error  # the next run retries it


def test_load_scorer_on_the_openai_engine_scores_the_served_probabilities(monkeypatch):
    # the Python API takes engine options as keyword arguments, as `run -S` does
    import prefbench
    from prefbench.data import load_dataset

    monkeypatch.setenv("PREFBENCH_TEST_KEY", KEY)
    item = load_dataset("demo", "test", limit=1).items[0]
    images = [ref.read_bytes() for ref in item.images]
    with FakeServer() as srv:
        with prefbench.load_scorer("expected_rating", model="fake", engine="openai", base_url=[srv.url],
                                   api_key_env="PREFBENCH_TEST_KEY") as scorer:
            assert scorer.info()["engine"] == "openai" and "note" not in scorer.info()
            scores = scorer.score(item.prompt, images)
        answers = [r for r in srv.requests if r.get("continue_final_message")]
    assert len(answers) == len(images)
    assert sorted(scores) == pytest.approx(sorted(_expected_rating(r["messages"][:-1]) for r in answers), abs=1e-9)


def test_openai_engine_without_model_asks_for_the_served_name_and_the_server(tmp_path):
    """`--engine openai` with no --model: the hint is the server's (the served model name and
    --base-url), not the transformers one about a checkpoint folder (issue 30 item 5)."""
    for extra in ([], ["--base-url", "http://127.0.0.1:9/v1"]):
        proc = run_cli(["run", "--scorer", "expected_rating", "--engine", "openai", *extra, "--limit", "2",
                        "--no-progress", "--results", tmp_path / "r"], cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "needs --model: the model name the server serves" in proc.stderr
        assert "--base-url" in proc.stderr and "AutoModelForImageTextToText" not in proc.stderr
        assert not (tmp_path / "r").exists()


def test_an_unreachable_server_names_the_first_error_and_a_rerun_retries_them(tmp_path):
    """--base-url on a closed port: the run ends with its first error (not only "8 error"); the
    rows are retryable, so the same command scores them again, and its resume line says that none
    was scored rather than "8 images already scored" (issue 30 item 10)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["run", "--scorer", "expected_rating", "--engine", "openai", "--model", "served-name", "--base-url",
            f"http://127.0.0.1:{port}/v1", "-S", "max_retries=0", "--limit", "2", "--no-progress", "--results",
            tmp_path / "r"]
    first = run_cli(args, cwd=tmp_path)
    assert first.returncode == 1, first.stderr[-2000:]
    last = first.stderr.strip().splitlines()[-1]
    assert "no image scored (8 error" in last and f"first error: request failed: cannot reach http://127.0.0.1:{port}" \
        in last and "(all retryable: the same command tries them again)" in last, last
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 1
    assert ": 0 images already scored, 8 to go (8 of them failed with a retryable error and are tried again)" \
        in again.stderr, again.stderr[-2000:]
