"""``prefbench compare``, ``report`` and ``check``: the commands that read finished runs.

Each command imports what it needs inside the function."""

from __future__ import annotations

from pathlib import Path

from prefbench.cli_output import _clean, _fmt, _print_json


def cmd_compare(args) -> int:
    from prefbench.errors import UsageError
    from prefbench.metrics import paired_bootstrap
    from prefbench.report.pairing import Side, pairing_problem
    from prefbench.report.runs import run_view
    from prefbench.store import RUN_FILE

    views = []
    for name, given in (("A", args.run_a), ("B", args.run_b)):
        file = Path(given)
        file = file / RUN_FILE if file.is_dir() else file
        view = run_view(file, file.parent)  # the report's and check's validated view of a record
        if view.status != "complete" or view.per_prompt() is None:
            raise UsageError(f"run {name} ({given}) is not a finished run (status {view.status!r}); "
                             "finish it (rerun its command) before comparing")
        views.append(view)
    va, vb = views
    problem = pairing_problem(Side.of(va), Side.of(vb))  # the leaderboard's and check's rule
    if problem == "different splits":
        raise UsageError(f"runs are on different splits: A {va.dataset}/{va.split}, B {vb.dataset}/{vb.split}")
    if problem == "different data":
        raise UsageError(f"runs scored different data (content hash {str(va.content_hash)[:8]} vs "
                         f"{str(vb.content_hash)[:8]}): their prompts cannot be paired")
    if problem == "different conventions":
        raise UsageError(f"runs use different metric conventions ({va.convention} vs {vb.convention})")
    res = paired_bootstrap(va.per_prompt(), vb.per_prompt(), n_resamples=args.bootstrap_resamples)
    out = {
        "dataset": va.dataset, "split": va.split, "convention": va.convention,
        "a": {"run_dir": str(args.run_a), "scorer": va.scorer, "model": va.model, "accuracy": va.record.metrics.accuracy},
        "b": {"run_dir": str(args.run_b), "scorer": vb.scorer, "model": vb.model, "accuracy": vb.record.metrics.accuracy},
        **res.to_json(),
    }
    if args.json:
        _print_json(_clean(out))
    else:
        print(f"{out['dataset']}/{out['split']} — {out['convention']} convention, {res.n_common} shared prompts")
        print(f"  A {out['a']['scorer']}: {_fmt(out['a']['accuracy'])}   B {out['b']['scorer']}: {_fmt(out['b']['accuracy'])}")
        print(f"  A - B = {_fmt(res.difference)}  95% CI [{_fmt(res.ci_low)}, {_fmt(res.ci_high)}]"
              f"  (paired cluster bootstrap, {res.n_resamples} resamples)")
        print(f"  share of resamples where A - B <= 0: {_fmt(res.p_a_better)}; where A - B >= 0: "
              f"{_fmt(res.p_b_better)}")
        print("  (one-sided bootstrap p-values: the first small means A is reliably better, the second small "
              "means B is)")
    return 0


def cmd_report(args) -> int:
    from prefbench.report import write_report

    if args.items < 0:
        from prefbench.errors import UsageError

        raise UsageError(f"--items must be >= 0, got {args.items}")
    md, html = write_report(args.results, args.out, n_items=args.items, n_resamples=args.bootstrap_resamples)
    print(f"wrote {md}\nwrote {html}")
    return 0


def cmd_check(args) -> int:
    from prefbench.report.check import format_table, run_check, write_baseline
    from prefbench.report.runs import find_runs

    _, runs = find_runs(args.results)
    if args.write_baseline:
        n = write_baseline(args.baseline, runs)
        print(f"wrote {args.baseline} ({n} entries from {args.results})")
        return 0
    rows = run_check(args.baseline, runs, args.alpha, args.bootstrap_resamples)
    if args.json:
        _print_json(_clean([r.to_json() for r in rows]))
    else:
        print(format_table(rows, args.alpha))
    return 1 if any(r.verdict == "FAIL" for r in rows) else 0
