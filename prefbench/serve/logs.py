"""The server's log stays bounded under a flood of bad or slow connections.

Every connection that sends garbage, drips its request past the receive deadline or exceeds
``--max-connections`` writes a line (uvicorn's warning, or its access line for the 4xx/5xx
answer). Thousands of them a second would write megabytes. :class:`RateLimit` lets through at
most ``burst`` lines of one kind per ``window_s`` seconds, counts the rest, and writes one line
per kind saying how many were left out once the window is over (with the next line of any
kind, or when the server stops). A kind is a request line's status code, or another line's
logger, level and message template: what a client controls (its address, the path) never makes
a kind of its own, so the kinds are few.
"""

from __future__ import annotations

import logging
import threading
import time

#: lines of one kind written per window before the rest are only counted
BURST = 50
#: the window, seconds
WINDOW_S = 10.0
#: kinds tracked at most; further ones share one
MAX_KINDS = 64


class RateLimit(logging.Filter):
    """A logging filter (put it on handlers) that rate-limits records by kind."""

    def __init__(self, burst: int = BURST, window_s: float = WINDOW_S, clock=time.monotonic):
        super().__init__()
        self.burst, self.window_s, self.clock = burst, window_s, clock
        self._kinds: dict[tuple, list] = {}  # kind -> [window start, written, left out, a record]
        self._lock = threading.Lock()
        self._summarising = False
        self.handlers: list[logging.Handler] = []  # where summaries go

    @staticmethod
    def kind(record: logging.LogRecord) -> tuple:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            return (record.name, record.args[4])  # the status code
        return (record.name, record.levelno, str(record.msg))

    def filter(self, record: logging.LogRecord) -> bool:
        if self._summarising:
            return True
        now = self.clock()
        with self._lock:
            due = self._due(now)
            kind = self.kind(record)
            if kind not in self._kinds and len(self._kinds) >= MAX_KINDS:
                kind = ("other",)
            state = self._kinds.setdefault(kind, [now, 0, 0, record])
            if state[1] < self.burst:
                state[1] += 1
                keep = True
            else:
                state[2] += 1
                state[3] = record
                keep = False
        self._write(due)
        return keep

    def _due(self, now: float, every: bool = False) -> list[tuple[logging.LogRecord, int, float]]:
        """Summaries of the kinds whose window is over (``every``: all), and those windows reset."""
        due = []
        for kind, state in list(self._kinds.items()):
            if every or now - state[0] >= self.window_s:
                if state[2]:
                    due.append((state[3], state[2], now - state[0]))
                del self._kinds[kind]
        return due

    def _write(self, due) -> None:
        for record, left_out, seconds in due:
            what = record.getMessage()
            if len(what) > 200:
                what = what[:200] + "..."
            summary = logging.LogRecord("prefbench.serve", logging.WARNING, __file__, 0,
                                        "%d more lines like this one left out in the last %.0f s (the log is "
                                        "rate-limited): %s", (left_out, seconds, what), None)
            self._summarising = True
            try:
                for handler in self.handlers:
                    handler.handle(summary)
            finally:
                self._summarising = False

    def flush(self) -> None:
        """Write the summaries still pending (the server is stopping)."""
        with self._lock:
            due = self._due(self.clock(), every=True)
        self._write(due)


def install(loggers: tuple[str, ...] = ("uvicorn", "uvicorn.error", "uvicorn.access")) -> RateLimit:
    """One :class:`RateLimit` on every handler of ``loggers`` (uvicorn's, once it has configured
    them); its summaries go to the first handler (stderr)."""
    limit = RateLimit()
    seen: list[logging.Handler] = []
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if handler not in seen:
                seen.append(handler)
                handler.addFilter(limit)
    limit.handlers = seen[:1]
    return limit
