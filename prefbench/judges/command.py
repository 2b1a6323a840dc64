"""``prefbench evaluate --judge-outputs FILE --protocol NAME``: the command's checks and its printout."""

from __future__ import annotations

from prefbench.errors import UsageError


def evaluate_command(args) -> int:
    from prefbench.cli_output import _clean, _extra_lines, _fmt, _print_json
    from prefbench.judges.outputs import evaluate_judge_outputs

    if not (args.judge_outputs and args.protocol):
        raise UsageError("--judge-outputs FILE and --protocol NAME go together (see `prefbench list` for protocols)")
    if args.scores or args.verdicts:
        raise UsageError("--judge-outputs is read on its own: leave out --scores and --verdicts")
    r = evaluate_judge_outputs(args.dataset, args.judge_outputs, args.protocol, args.split, args.data_dir,
                               args.convention, args.tie_threshold, args.bootstrap_resamples,
                               on_parse_failure=args.on_parse_failure, read_out=args.read_out,
                               parsed_out=args.parsed_out, limit=args.limit)
    if args.json:
        _print_json(_clean(r))
        return 0
    print(f"{r['judge_outputs']} ({r['protocol']}, {r['read_out']} read-out) on {r['dataset']}/{r['split']} — {r['convention']} convention")
    if r.get("limit"):
        print(f"  the first {r['limit']} items (--limit)")
    print(f"  {r.get('measure', 'accuracy')} {_fmt(r['accuracy'])}  95% CI [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
          f"  ({r['n_prompts']} prompts, {r['n_pairs']} pairs)")
    print(f"  {r['n_judgements']} judgements, {r['n_parse_failures']} parse failure(s)"
          + (f" (lines {', '.join(map(str, r['parse_failure_lines']))}"
             + (", ..." if r["n_parse_failures"] > len(r["parse_failure_lines"]) else "") + ")"
             if r["n_parse_failures"] else "")
          + f"; policy {r['policy']}" + (" (official)" if r["on_parse_failure"] == "official" else " (override)"))
    print(f"  parse-failure rule: {r['policy_rule']}")
    if r["n_excluded_items"] or r["n_unjudged_images"]:
        print(f"  excluded items {r['n_excluded_items']}  unjudged images {r['n_unjudged_images']} (missing scores "
              "count wrong)")
    if "first_shown_win_rate" in r:
        bias = f"  position: the image shown first wins {_fmt(r['first_shown_win_rate'], 3)} of {r['n_decided']} " \
               "decided judgements"
        if r.get("n_pairs_both_orders"):
            bias += f"; both orders agree on {_fmt(r['order_agreement'], 3)} of {r['n_pairs_both_orders']} pairs"
        print(bias)
    for line in _extra_lines(r):
        print(line)
    if r.get("parsed_out"):
        print(f"  one row per judgement: {r['parsed_out']}")
    return 0
