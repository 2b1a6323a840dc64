"""``prefbench run``, ``rank``, ``evaluate`` and ``merge``: the commands that score, and the text a
finished run prints.

Each command imports what it needs inside the function."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from prefbench.cli_output import _clean, _extra_lines, _fmt, _print_json

if TYPE_CHECKING:
    from prefbench.record import RunRecord


def _run_text(rec: RunRecord) -> str:
    m, c, ds = rec.metrics, rec.counts, rec.dataset
    model = f" ({rec.model_id})" if rec.model_id else ""
    n_images = sum(v for k, v in c.to_json().items() if k != "forced")
    accuracy = (f"{m.get('measure', 'accuracy')} {_fmt(m.accuracy)}  95% CI [{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]"
                if c.ok else f"accuracy n/a (0 of {n_images} scored)")
    lines = [
        f"{rec.scorer.name}{model} on {ds.name}/{ds.split} — {m.convention} convention"
        + (" [cached]" if rec.cached else ""),
        f"  {accuracy}  ({m.n_prompts} prompts, {m.n_pairs} pairs; cluster bootstrap over prompts)",
        f"  per-item Kendall tau-b {_fmt(m.kendall_tau_b, 3)}  Spearman {_fmt(m.spearman, 3)}",
        f"  images: {c.ok} ok, {c.unparsed} unparsed, {c.error} error, {c.forced or 0} forced"
        + (f", {c.missing} missing" if c.missing else ""),
    ]
    lines += _extra_lines(m.to_json())
    if m.has("brier"):
        lines.append(f"  calibration: Brier {_fmt(m.brier)}  ECE {_fmt(m.ece)}")
    if ds.note:
        lines.append(f"  note: {ds.note}")
    lines.append(f"  run: {rec.run_dir}")
    return "\n".join(lines)


def cmd_run(args) -> int:
    from prefbench.runner import RunConfig, flat_summary, run

    cfg = RunConfig.from_args(args)
    if args.executor != "local" and args.scorer is None:
        from prefbench.errors import UsageError

        raise UsageError("--executor ray runs one scorer's run (or a matrix): give --scorer")
    if cfg.shard is not None:
        from prefbench.matrix import is_matrix

        if args.scorer is None or is_matrix(args.scorer, args.dataset, args.split):
            from prefbench.errors import UsageError

            raise UsageError("--shard splits one run: give one --scorer, --dataset and --split")
    if args.scorer is None:
        from prefbench.suites import suite_for

        suite = None if args.model else suite_for(args.dataset)  # the bundled demo's, registered by the demo
        if suite is None:
            from prefbench.errors import UsageError
            from prefbench.registry import stale_metadata

            raise UsageError("--scorer is required unless you run the bundled demo suite (no --model, --dataset demo)"
                             + ("; prefbench's installed metadata predates the demo's entry points: reinstall with "
                                "`pip install --no-deps -e .`" if stale_metadata() else ""))
        if "," in (args.split or ""):
            from prefbench.errors import UsageError

            raise UsageError("the demo suite (no --scorer) runs on one split; for several, name the scorers: "
                             f"prefbench run --scorer random,clip --split {args.split}")
        rows = suite.run(cfg)
        if args.json:
            _print_json(_clean(rows))
        else:
            print(suite.leaderboard_text(rows))
        return 0
    from prefbench.matrix import is_matrix

    if is_matrix(args.scorer, args.dataset, args.split, args.model):  # every combination, one ordinary run each
        from prefbench.matrix import leaderboard_text, run_matrix, split_list

        rows = run_matrix(cfg, split_list(args.scorer), split_list(args.dataset), split_list(args.split))
        _print_json(_clean(rows)) if args.json else print(leaderboard_text(rows))
        return 1 if any("failed" in r for r in rows) else 0
    record = run(cfg)
    if args.json:
        _print_json(_clean(flat_summary(record)))
    else:
        print(_run_text(record))
    if record.counts.ok == 0:
        c = record.counts
        print(f"prefbench: error: no image scored ({c.error} error, {c.unparsed} unparsed, "
              f"{c.missing or 0} missing){_first_failure(record.run_dir)}; see the errors in "
              f"{record.run_dir}/samples.jsonl", file=sys.stderr)
        return 1
    return 0


def _first_failure(run_dir: str) -> str:
    """'; first error: ...' from a run's samples (and whether a rerun retries the errors)."""
    from pathlib import Path

    from prefbench.errors import PrefbenchError
    from prefbench.store import SAMPLES_FILE, read_samples

    try:
        rows = read_samples(Path(run_dir) / SAMPLES_FILE, repair=False)
    except (OSError, ValueError, PrefbenchError):  # only a hint: the counts are already printed
        return ""
    failed = [r for r in rows.values() if r.get("status") in ("error", "unparsed")]
    if not failed:
        return ""
    first = failed[0]
    what = str(first.get("error") or first.get("status"))
    retry = sum(1 for r in failed if r.get("retryable"))
    again = (f" ({'all' if retry == len(failed) else retry} retryable: the same command tries them again)"
             if retry else " (not retryable: the same command does not score them again)")
    return f"; first {first['status']}: {what}{again}"


def cmd_rank(args) -> int:
    from prefbench.api import load_scorer, ranking
    from prefbench.registry import parse_param

    params = dict(parse_param(p) for p in args.S)
    for key, value in (("rollouts", args.rollouts), ("base_url", args.base_url or None)):
        if value is not None:
            params[key] = value
    with load_scorer(args.scorer, args.model, args.engine, seed=args.seed, mode=args.mode, **params) as scorer:
        item = scorer.score_items([(args.prompt, args.images)], on_error="nan")[0]
        info = scorer.info()
    rows = ranking(item, args.images)
    failed = [r for r in rows if r["status"] != "ok"]
    if args.json:
        _print_json(_clean({"scorer": info["scorer"], "model": info["model"].get("id"), "mode": info["mode"],
                            "prompt": args.prompt, "ranking": rows, "note": info.get("note")}))
    else:
        model = info["model"].get("id")
        print(f"{info['scorer']}{f' ({model})' if model else ''} ranks {len(rows)} images for {args.prompt!r}"
              + (" (round robin)" if info["mode"] == "round_robin" else "") + ", best first:")
        for r in rows:
            head = f"{r['rank']:>3}. {r['score']:.4f}" if r["status"] == "ok" else f"  -  {r['status']}"
            print(f"{head}  {r['image']}" + (f"  ({r['error']})" if r["error"] else ""))
            for text in r["traces"] if args.traces else []:
                print("       " + " ".join(text.split()))
        if info.get("note"):
            print(f"note: {info['note']}", file=sys.stderr)
    if failed:
        print(f"prefbench: error: {len(failed)} of {len(rows)} images could not be scored", file=sys.stderr)
        return 1
    return 0


def cmd_evaluate(args) -> int:
    judge_only = (getattr(args, "on_parse_failure", "official") != "official" or getattr(args, "read_out", "hard") != "hard"
                  or getattr(args, "parsed_out", None))
    if getattr(args, "judge_outputs", None) or getattr(args, "protocol", None) or judge_only:
        from prefbench.judges.command import evaluate_command

        return evaluate_command(args)
    from prefbench.evaluate import evaluate_file

    result = evaluate_file(args.dataset, args.scores, args.split, args.data_dir, args.convention,
                           args.tie_threshold, args.bootstrap_resamples, verdicts_path=args.verdicts,
                           limit=args.limit)
    if args.json:
        _print_json(_clean(result))
    else:
        what = " + ".join(str(p) for p in (args.scores, args.verdicts) if p)
        print(f"{what} on {result['dataset']}/{result['split']} — {result['convention']} convention")
        print(f"  {result.get('measure', 'accuracy')} {_fmt(result['accuracy'])}  "
              f"95% CI [{_fmt(result['ci_low'])}, {_fmt(result['ci_high'])}]"
              f"  ({result['n_prompts']} prompts, {result['n_pairs']} pairs)")
        for line in _extra_lines(result):
            print(line)
        if args.scores:
            print(f"  per-item Kendall tau-b {_fmt(result['kendall_tau_b'], 3)}  Spearman {_fmt(result['spearman'], 3)}")
    return 0


def cmd_merge(args) -> int:
    from prefbench.merge import merge
    from prefbench.runner import flat_summary

    record = merge(args.shards, args.into, args.results, args.data_dir)
    if args.json:
        _print_json(_clean(flat_summary(record)))
    else:
        print(_run_text(record))
    return 0
