"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 that fails on purpose.

It speaks just enough of the chat-completions API for the OpenAI backend: a reasoning request
gets a fixed think text ending in the answer prefix; an answer request (``continue_final_message``)
gets log-probabilities that are a deterministic function of the request, so tests can compute
the expected soft score themselves. ``script`` is a list of actions consumed one per request
(then ``default``): an int HTTP status to fail with, ``("sleep", s)`` to stall, ``"ok"``.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

THINK = "<think>looks fine</think><answer>"


def fake_logprobs(messages: list, candidates=("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")) -> dict[str, float]:
    """Log-probabilities of the digit tokens, from a hash of the request's messages (images
    included), normalised with 40% of the mass left to a non-digit token."""
    h = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()
    w = [1 + b for b in h[:len(candidates)]]
    total = sum(w) / 0.6
    return {c: math.log(x / total) for c, x in zip(candidates, w)}


class FakeServer:
    def __init__(self, script=None, default="ok", tokenize=True, top_n_digits=None):
        self.script = list(script or [])
        self.default = default
        self.tokenize = tokenize
        self.top_n_digits = top_n_digits  # return only the N likeliest digits (a top-N cut)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.endswith("/tokenize"):
                    if not fake.tokenize:
                        return self._send(404, {"error": "no tokenize here"})
                    text = body["prompt"]
                    ids = [ord(text)] if len(text) == 1 else ([900 + len(text)] if text.startswith("<|") else [1, 2])
                    return self._send(200, {"tokens": ids, "count": len(ids)})
                with fake._lock:
                    action = fake.script.pop(0) if fake.script else fake.default
                    fake.requests.append(body)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    if isinstance(action, tuple) and action[0] == "sleep":
                        time.sleep(action[1])
                    elif isinstance(action, int):
                        return self._send(action, {"error": {"message": f"scripted {action}; you sent "
                                                             f"{self.headers.get('authorization')}"}})
                    elif action == "echo-auth":
                        return self._send(500, {"error": {"message": f"auth was {self.headers.get('authorization')}"}})
                    time.sleep(0.02)
                    return self._send(200, fake.completion(body))
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def completion(self, body: dict) -> dict:
        if body.get("continue_final_message"):
            lps = fake_logprobs(body["messages"][:-1])
            if body.get("logprob_token_ids"):
                top = [{"token": chr(i), "logprob": lps[chr(i)]} for i in body["logprob_token_ids"]]
            else:
                ranked = sorted(lps.items(), key=lambda kv: -kv[1])[: self.top_n_digits or len(lps)]
                top = [{"token": t, "logprob": v} for t, v in ranked] + [{"token": " x", "logprob": math.log(0.4)}]
                top = sorted(top, key=lambda e: -e["logprob"])[: body.get("top_logprobs") or 20]
            best = max(top, key=lambda e: e["logprob"])
            content = [{"token": best["token"], "logprob": best["logprob"], "top_logprobs": top}]
            text = best["token"] + ("</answer>" if body.get("max_tokens", 1) > 1 else "")
            return self._wrap(text, {"content": content}, 1 + (body.get("max_tokens", 1) > 1))
        if body.get("logprobs"):  # an inline rollout: reasoning, answer and logprobs at every token
            lps = fake_logprobs(body["messages"])
            ranked = sorted(lps.items(), key=lambda kv: -kv[1])
            top = [{"token": t, "logprob": v} for t, v in ranked][: body.get("top_logprobs") or 20]
            pieces = ["<think>", "looks", " fine", "</think>", "<answer>", top[0]["token"], "</answer>"]
            content = [{"token": t, "logprob": -0.1, "top_logprobs": top if t == top[0]["token"] else
                        [{"token": t, "logprob": -0.1}]} for t in pieces]
            return self._wrap("".join(pieces), {"content": content}, len(pieces))
        return self._wrap(THINK, None, 7)

    @staticmethod
    def _wrap(text, logprobs, n):
        return {"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "logprobs": logprobs, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 50, "completion_tokens": n, "total_tokens": 50 + n}}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
