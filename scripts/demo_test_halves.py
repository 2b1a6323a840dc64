"""The demo test split's first 100 prompts against the 200 added in demo-v4, row by row.

Until demo-v4 the test split had 100 prompts; it now has 300, and the first 100 are the same
prompts and images (each split has its own random stream). The committed scorers were built and
first measured on those 100. This script splits every committed demo/test run into
``test-0000..0099`` (the old split) and ``test-0100..0299`` (prompts no run had seen before
demo-v4) and prints each row's accuracy and 95% cluster-bootstrap CI on both parts, then the
trained-vs-zero-shot/random comparisons on the new part alone (paired bootstrap). It reads only
run.json files.

    python scripts/demo_test_halves.py [--results results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefbench.demo_zoo.tables import ROWS, collect
from prefbench.metrics import paired_bootstrap
from prefbench.metrics.bootstrap import cluster_bootstrap
from prefbench.metrics.conventions import PerPrompt
from prefbench.runner import load_per_prompt

OLD = 100  # prompts in the test split before demo-v4

COMPARISONS = [("expected_rating", "zero_shot"), ("anchor_pairwise", "zero_shot"),
               ("expected_rating", "random"), ("anchor_pairwise", "random"),
               ("expected_rating", "naive_sampling"), ("expected_rating@3", "expected_rating"),
               ("anchor_pairwise", "expected_rating"), ("expected_rating", "sft_rating"),
               ("anchor_pairwise", "sft_pairwise")]


def part(stats: PerPrompt, new: bool) -> PerPrompt:
    keep = [k for k, item in enumerate(stats.item_ids) if (int(item.rsplit("-", 1)[1]) >= OLD) == new]
    return PerPrompt(stats.convention, [stats.item_ids[k] for k in keep], stats.num[keep], stats.den[keep],
                     int(stats.den[keep].sum()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/demo_test_halves.py", description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    a = p.parse_args(argv)
    runs = collect(Path(a.results), "test")
    if not runs:
        raise SystemExit(f"no finished demo/test runs under {a.results}")
    stats = {key: load_per_prompt(rec) for key, rec in runs.items()}
    print(f"{'row':<44} {'prompts 0-99':<24} {'prompts 100-299':<24} {'all':<24}")
    for key, _, _, _, label in ROWS:
        if key not in stats:
            continue
        cells = []
        for s in (part(stats[key], False), part(stats[key], True), stats[key]):
            if len(s.item_ids) < 2:
                cells.append("n/a (no such prompts)")
                continue
            lo, hi = cluster_bootstrap(s)
            cells.append(f"{s.accuracy:.3f} [{lo:.3f}, {hi:.3f}]")
        print(f"{label:<44} " + " ".join(f"{c:<24}" for c in cells))
    print("\npaired bootstrap on prompts 100-299 only:")
    for x, y in COMPARISONS:
        if x in stats and y in stats and len(part(stats[x], True).item_ids) > 1:
            r = paired_bootstrap(part(stats[x], True), part(stats[y], True))
            pval = "<0.001" if r.p_a_better < 0.001 else f"{r.p_a_better:.3f}"
            print(f"  {x} - {y}: {r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}], p={pval}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
