"""Every error prefbench raises to its user, in one hierarchy. Each maps to a CLI exit code;
messages are meant to be shown to users as-is.

::

    PrefbenchError (exit 1)
    ├── UsageError (exit 2): bad input
    │   ├── DataError: a file that cannot be read (names the file and line)
    │   │   └── OtherKindError: a run.json of another kind than the reader takes
    │   ├── MissingDataError: files not on disk (says which go where)
    │   ├── UnknownNameError (= UnknownScorerError): no registry knows the name
    │   └── WeightsError: weights that cannot be found or read
    ├── MissingExtraError: an install extra is missing
    ├── ScoringError: an image could not be scored (the API's on_error="raise")
    ├── ServeError: the reward server refused or failed a request (the client)
    └── ImageError: one image that cannot be used (a per-image ``error`` status, never a stopped run)

Modules also keep private exceptions as control-flow signals that never reach a user (a retry
wanted, a deadline passed, a request expired or refused in the server); each is caught in the
module that raises it.
"""

from __future__ import annotations


class PrefbenchError(Exception):
    """Base class; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(PrefbenchError):
    """Bad input from the user: a malformed file, an unknown option value, missing data."""

    exit_code = 2


class DataError(UsageError):
    """A dataset or scores file that cannot be read. The message names the file (and line)."""

    def __init__(self, message: str, path: object | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line


class MissingDataError(UsageError):
    """Dataset files are not on disk (no hub here); the message says which files go where."""


class UnknownNameError(UsageError):
    """A name that no registry of its kind knows (scorer, engine, dataset, convention, model alias,
    model profile, judge protocol, suite), neither built in nor from an installed plugin. The
    message names the closest known names; ``close`` holds them."""

    def __init__(self, kind: str, name: str, known) -> None:
        import difflib

        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {', '.join(known) or '(none)'}")
        self.kind, self.name, self.close = kind, name, close


#: the scorer registry's name for it, from before every registry shared one error
UnknownScorerError = UnknownNameError


class MissingExtraError(PrefbenchError):
    """Something (a scorer, an engine, a command, an executor) needs an install extra that is not
    installed; the message names the modules and the command that installs them."""

    def __init__(self, scorer: str, extra: str, missing: str, kind: str = "scorer", hint: str | None = None):
        how = hint or f"install it with `pip install 'prefbench[{extra}]'`"
        super().__init__(f"{kind} {scorer!r} needs {missing}, which is not installed: {how}")
        self.extra = extra


class ImageError(PrefbenchError):
    """An image that cannot be used (missing, empty, truncated, undecodable, oversized).

    Raised per image and turned into a per-image ``error`` status; it never stops a run.
    """


class WeightsError(UsageError):
    """Weights that cannot be found or read; the message names the file(s) to provide."""


class OtherKindError(DataError):
    """A run.json of another kind than the reader takes (e.g. ``kind: generators``, from
    ``bench-generators``, where a scoring run is expected)."""


class ScoringError(PrefbenchError):
    """An image could not be scored (and ``on_error="raise"``); ``items`` holds every item's
    outcome (:class:`prefbench.api.ScoredItem`)."""

    def __init__(self, message: str, items: list):
        super().__init__(message)
        self.items = items


class ServeError(PrefbenchError):
    """The server refused a request (4xx), or failed it after every retry (5xx, no connection).
    ``status`` is the HTTP status (None when no answer came)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status
