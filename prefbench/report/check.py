"""``prefbench check``: a CI gate that fails when a run is significantly worse than its baseline.

Baseline file (JSON; ``prefbench check --write-baseline`` writes one from the current runs)::

    {"format": "prefbench-baseline", "version": 1, "entries": [
      {"scorer": "random", "model": null, "dataset": "demo", "split": "test",
       "convention": "imagereward", "params": {"seed": 0, "check_images": true},
       "content_hash": "08247a...", "accuracy": 0.4899, "ci_low": 0.4216, "ci_high": 0.5586,
       "confidence": 0.95, "n_prompts": 58, "n_pairs": 298, "run": "demo-test/random-018e826d",
       "per_prompt": {"item_ids": [...], "num": [...], "den": [...]}}]}

Matching: a run matches an entry when scorer, dataset and split are equal, and so are
``model``, ``convention`` and every key of ``params`` where the entry gives them (an omitted key
matches anything). Among matching runs, finished ones are preferred; more than one candidate,
or none, is a usage error (exit 2) naming the baseline file and entry.

Test, one-sided at level ``alpha`` (H1: the run is worse than the baseline):

- **paired** when the entry holds ``per_prompt`` and the run scored the same data (equal
  ``content_hash``, or no hash in the entry): paired cluster bootstrap of run − baseline over the
  shared prompts; p = share of resamples with difference >= 0. Fail when p < alpha.
- **CI rule** otherwise (no per-prompt statistics, or different data): each 95% CI is turned
  into a standard error, se = (ci_high - ci_low) / (2 * 1.96), and z = (acc_run - acc_base) /
  sqrt(se_run^2 + se_base^2); p = Phi(z). Fail when p < alpha. This treats the two estimates as
  independent, which is conservative when they share prompts.

A matching run that is not complete, or whose difference cannot be tested (fewer than two
prompts, no CI), fails the gate: a gate that cannot test must not pass silently.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefbench.data._io import read_json
from prefbench.errors import DataError, UsageError
from prefbench.metrics import DEFAULT_RESAMPLES, DEFAULT_SEED, paired_bootstrap
from prefbench.report.pairing import Side, pairing_problem
from prefbench.report.runs import RunView, per_prompt_from

FORMAT = "prefbench-baseline"
VERSION = 1
Z95 = 1.959963984540054
_REQUIRED = {"scorer": str, "dataset": str, "split": str, "accuracy": (int, float), "ci_low": (int, float),
             "ci_high": (int, float)}


@dataclass
class CheckRow:
    entry: int
    scorer: str
    model: str | None
    split: str
    baseline: float
    current: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_worse: float | None
    method: str
    verdict: str  # PASS or FAIL
    reason: str = ""
    run: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)


def load_baseline(path: str | Path) -> list[dict]:
    """Read and validate a baseline file; problems are DataErrors naming the file and entry."""
    path = Path(path)
    if not path.is_file():
        raise DataError("baseline file not found (write one with `prefbench check --write-baseline`)", path)
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f'not a prefbench baseline (expected "format": "{FORMAT}")', path)
    if data.get("version") != VERSION:
        raise DataError(f"baseline version {data.get('version')!r} is not supported (expected {VERSION})", path)
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise DataError('"entries" must be a non-empty list', path)
    for k, e in enumerate(entries):
        where = f"entry {k}"
        if not isinstance(e, dict):
            raise DataError(f"{where} is not an object", path)
        for key, typ in _REQUIRED.items():
            if not isinstance(e.get(key), typ) or isinstance(e.get(key), bool):
                raise DataError(f"{where}: {key!r} is missing or not a {getattr(typ, '__name__', 'number')}", path)
        if not e["ci_low"] <= e["accuracy"] <= e["ci_high"]:
            raise DataError(f"{where}: needs ci_low <= accuracy <= ci_high", path)
        if "params" in e and not isinstance(e["params"], dict):
            raise DataError(f"{where}: 'params' must be an object", path)
        if e.get("confidence", 0.95) != 0.95:
            raise DataError(f"{where}: only 95% CIs are supported (confidence 0.95)", path)
        if "per_prompt" in e:
            per_prompt_from(e["per_prompt"], e.get("convention"), int(e.get("n_pairs") or 0), path,
                            f"{where}: per_prompt")
    return entries


def _describe(e: dict) -> str:
    model = f" model={e['model']!r}" if "model" in e else ""
    params = f" params={json.dumps(e['params'], sort_keys=True)}" if e.get("params") else ""
    return f"scorer={e['scorer']!r}{model} {e['dataset']}/{e['split']}{params}"


def matches(e: dict, r: RunView) -> bool:
    if (r.scorer, r.dataset, r.split) != (e["scorer"], e["dataset"], e["split"]):
        return False
    if "model" in e and e["model"] != r.model:
        return False
    if e.get("convention") is not None and r.convention is not None and e["convention"] != r.convention:
        return False
    return all(k in r.params and r.params[k] == v for k, v in (e.get("params") or {}).items())


def find_match(e: dict, k: int, runs: list[RunView], baseline: Path) -> RunView:
    found = [r for r in runs if matches(e, r)]
    complete = [r for r in found if r.ranked]
    candidates = complete or found
    if not candidates:
        raise UsageError(f"{baseline}: entry {k} ({_describe(e)}) matches no run under the results folder")
    if len(candidates) > 1:
        raise UsageError(f"{baseline}: entry {k} ({_describe(e)}) matches {len(candidates)} runs "
                         f"({', '.join(r.path for r in candidates)}); add 'params' or 'model' to the entry")
    return candidates[0]


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def check_entry(e: dict, k: int, r: RunView, alpha: float, n_resamples: int, baseline: Path) -> CheckRow:
    row = CheckRow(k, e["scorer"], r.model, f"{e['dataset']}/{e['split']}", float(e["accuracy"]), r.accuracy, None,
                   None, None, None, "", "FAIL", run=r.path)
    if not r.ranked:
        row.method, row.reason = "none", f"run is {r.status}"
        return row
    row.difference = r.accuracy - row.baseline
    # an entry without a content hash (baselines written before it was recorded) is taken as made on
    # the run's data, as it always was
    entry = Side(e["dataset"], e["split"], e.get("convention") or r.convention, e.get("content_hash") or r.content_hash,
                 "per_prompt" in e)
    problem = pairing_problem(Side.of(r), entry)
    if problem is None:
        current = r.per_prompt()
        base = per_prompt_from(e["per_prompt"], r.convention, int(e.get("n_pairs") or 0), baseline,
                               f"entry {k}: per_prompt")
        res = paired_bootstrap(current, base, n_resamples=n_resamples, seed=DEFAULT_SEED)
        row.method = f"paired ({res.n_common} prompts)"
        if res.n_common < 2 or not math.isfinite(res.ci_low):
            row.reason = "fewer than 2 shared prompts: cannot test"
            return row
        row.difference, row.ci_low, row.ci_high, row.p_worse = res.difference, res.ci_low, res.ci_high, res.p_b_better
    else:
        row.method = "CI rule" + (f" ({problem})" if problem == "different data" else "")
        if r.ci_low is None or r.ci_high is None:
            row.reason = "run has no CI: cannot test"
            return row
        se = math.hypot((r.ci_high - r.ci_low) / (2 * Z95), (e["ci_high"] - e["ci_low"]) / (2 * Z95))
        row.ci_low, row.ci_high = row.difference - Z95 * se, row.difference + Z95 * se
        row.p_worse = _phi(row.difference / se) if se > 0 else (0.0 if row.difference < 0 else 1.0)
    row.verdict = "FAIL" if row.p_worse < alpha else "PASS"
    row.reason = f"significantly worse (p < {alpha:g})" if row.verdict == "FAIL" else ""
    return row


def run_check(baseline: str | Path, runs: list[RunView], alpha: float = 0.05,
              n_resamples: int = DEFAULT_RESAMPLES) -> list[CheckRow]:
    """Check every baseline entry against its matching run."""
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha}")
    baseline = Path(baseline)
    entries = load_baseline(baseline)
    matched = [(k, e, find_match(e, k, runs, baseline)) for k, e in enumerate(entries)]
    return [check_entry(e, k, r, alpha, n_resamples, baseline) for k, e, r in matched]


def _f(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def format_table(rows: list[CheckRow], alpha: float) -> str:
    head = ["#", "scorer", "model", "split", "baseline", "current", "diff", "95% CI of diff", "p one-sided",
            "method", "verdict", "run"]
    body = [[str(r.entry), r.scorer, r.model or "-", r.split, _f(r.baseline), _f(r.current), _f(r.difference, True),
             f"[{_f(r.ci_low, True)}, {_f(r.ci_high, True)}]" if r.ci_low is not None else "n/a",
             "n/a" if r.p_worse is None else ("<0.001" if r.p_worse < 0.001 else f"{r.p_worse:.3f}"), r.method,
             r.verdict + (f" ({r.reason})" if r.verdict == "FAIL" and r.reason else ""), r.run] for r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [head] + body]
    failed = sum(r.verdict == "FAIL" for r in rows)
    # p is a p-value, not the probability that the run is worse (an unchanged run has p 1.000)
    lines.append("p one-sided: the share of paired-bootstrap resamples with current >= baseline (CI rule: its "
                 f"normal approximation); a small p means reliably worse, FAIL below {alpha:g}")
    lines.append(f"{failed} of {len(rows)} baseline entries failed (one-sided alpha {alpha:g})" if failed
                 else f"all {len(rows)} baseline entries pass (one-sided alpha {alpha:g})")
    return "\n".join(lines)


def baseline_entry(r: RunView) -> dict[str, Any]:
    return {
        "scorer": r.scorer, "model": r.model, "dataset": r.dataset, "split": r.split, "convention": r.convention,
        "params": r.params, "content_hash": r.content_hash, "accuracy": r.accuracy, "ci_low": r.ci_low,
        "ci_high": r.ci_high, "confidence": 0.95, "n_prompts": r.n_prompts, "n_pairs": r.n_pairs, "run": r.path,
        "per_prompt": r.record.per_prompt,
    }


def write_baseline(path: str | Path, runs: list[RunView]) -> int:
    """Write a baseline with one entry per finished run; returns the number of entries."""
    ranked = [r for r in runs if r.ranked and r.ci_low is not None and r.ci_high is not None]
    if not ranked:
        raise UsageError("no finished runs with a CI to write a baseline from")
    entries = [baseline_entry(r) for r in sorted(ranked, key=lambda r: r.path)]
    for e in entries:
        clash = [r.path for r in ranked if matches(e, r)]
        if len(clash) > 1:
            raise UsageError(f"runs {', '.join(clash)} have the same scorer, model, split and options; a baseline "
                             "could not tell them apart (remove all but one)")
        if e["per_prompt"] is None:
            del e["per_prompt"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "version": VERSION, "entries": entries}
    from prefbench.store import write_text_atomic

    write_text_atomic(path, json.dumps(doc, indent=1, sort_keys=False, allow_nan=False) + "\n")
    return len(entries)
