"""The report's "Generator benchmarks" section: runs of ``prefbench bench-generators``
(``kind: generators`` in run.json), one subsection per run, in Markdown and HTML.

Like the rest of the report it reads only run.json (the statistics were computed when the run
was made) and depends on nothing else, so the same runs give the same text. Every string from a
record (generator names are folder names, prompts file names, scorer options) is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from prefbench.errors import DataError
from prefbench.record import RUN_SCHEMA_VERSION, GitInfo, RunRecord
from prefbench.store import read_record

KIND = "generators"
INTRO = ("Mean score per generator = the mean over prompts of each prompt's mean score (failed images are "
         "left out, never counted as 0). 95% CIs: cluster bootstrap over prompts. P(rank 1), the rank interval "
         "and the comparisons come from the same prompt resamples; a comparison uses the prompts both "
         "generators have, with a two-sided p-value.")


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


@dataclass
class GeneratorRun:
    """One generator benchmark as the report sees it; ``path`` is relative to the results root."""

    path: str
    record: RunRecord
    scorer: str
    model: str | None
    prompts: str
    status: str
    generators: list[dict] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)
    stability: dict = field(default_factory=dict)
    date: str = ""
    commit: str = ""

    @property
    def title(self) -> str:
        return f"{self.prompts} — {self.scorer}" + (f" · {self.model}" if self.model else "")

    @property
    def anchor(self) -> str:
        return "generators-" + self.path.replace("/", "-").replace("_", "-")

    def pair(self, a: str, b: str) -> tuple[dict | None, int]:
        """The stored comparison of a and b, and its sign as a - b (+1) or b - a (-1)."""
        for p in self.pairs:
            if (p.get("a"), p.get("b")) == (a, b):
                return p, 1
            if (p.get("a"), p.get("b")) == (b, a):
                return p, -1
        return None, 1

    def notes(self) -> list[str]:
        out = []
        for g in self.generators:
            if g.get("missing_prompts"):
                out.append(f"{g['name']} has no image for {g['missing_prompts']} prompt(s); its mean uses the prompts "
                           "it has")
        problems = (self.record.images or {}).get("problems") or {}
        for info in problems.values() if isinstance(problems, dict) else ():
            if isinstance(info, dict):
                out.append(f"{info.get('count')} file(s) skipped: {info.get('what')}")
        if self.status != "complete":
            out.append(f"run is {self.status}: the figures cover the images scored so far")
        return out


def _list_of_dicts(value: Any, file: Path, name: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DataError(f"field {name!r} must be a list of objects", file)
    return value


def generator_view(file: Path, root: Path) -> GeneratorRun:
    """Validate one generator-benchmark run.json; problems are DataErrors naming the file."""
    rec = read_record(file)
    if rec.newer_than_this:
        raise DataError(f"schema_version {rec.schema_version!r} is not one this prefbench reads "
                        f"(<= {RUN_SCHEMA_VERSION})", file)
    prompts = rec.prompts.get("name") if isinstance(rec.prompts, dict) else None
    for name, value in (("scorer.name", rec.scorer_name), ("prompts.name", prompts), ("status", rec.status)):
        if not isinstance(value, str) or not value:
            raise DataError(f"not a usable generator benchmark record: {name!r} must be a non-empty string", file)
    model = rec.model_id
    git = rec.git if rec.git is not None else GitInfo()
    view = GeneratorRun(
        path=file.parent.relative_to(root).as_posix() or ".", record=rec, scorer=rec.scorer_name,
        model=str(model) if model is not None else None, prompts=prompts, status=rec.status,
        date=str(rec.finished or rec.created or "")[:10],
        commit=str(git.commit or "")[:8] + ("*" if git.dirty and git.commit else ""),
    )
    if rec.has("generators"):  # absent while the first session is still scoring
        view.generators = _list_of_dicts(rec.generators, file, "generators")
        view.pairs = _list_of_dicts(rec.pairs if rec.has("pairs") else [], file, "pairs")
        for g in view.generators:
            if not isinstance(g.get("name"), str):
                raise DataError("field 'generators': every entry needs a string 'name'", file)
        view.stability = rec.stability if isinstance(rec.stability, dict) else {}
    return view


def find_generator_runs(results: str | Path) -> list[GeneratorRun]:
    """Every generator-benchmark run under ``results``, sorted by path."""
    from prefbench.report.runs import run_files

    root = Path(results)
    out = []
    for file in run_files(root):
        if read_record(file).kind == KIND:
            out.append(generator_view(file, root))
    return out


# -- formatting ------------------------------------------------------------------------------------
def _fmt(x: Any, digits: int = 4, signed: bool = False) -> str:
    from prefbench.report.text import fmt

    return fmt(_num(x), digits, signed)


def _ci(lo: Any, hi: Any, digits: int = 4, signed: bool = False) -> str:
    from prefbench.report.text import fmt_ci

    return fmt_ci(_num(lo), _num(hi), digits, signed)


def _share(x: Any) -> str:
    x = _num(x)
    return "n/a" if x is None else f"{x:.3f}"


def _rank_interval(g: dict) -> str:
    lo, hi = g.get("rank_low"), g.get("rank_high")
    return "n/a" if lo is None or hi is None else f"{lo}–{hi}"


def _count(g: dict, key: str) -> str:
    v = g.get(key)
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else "n/a"


HEAD = ["rank", "generator", "mean", "95% CI", "prompts", "images", "failed", "P(rank 1)", "mean rank",
        "rank 95% interval"]


def _cells(g: dict) -> list[str]:
    return [str(g.get("rank", "n/a")), str(g["name"]), _fmt(g.get("mean")), _ci(g.get("ci_low"), g.get("ci_high")),
            _count(g, "n_prompts"), _count(g, "n_images"), _count(g, "failed"), _share(g.get("p_first")),
            _fmt(g.get("mean_rank"), 2), _rank_interval(g)]


def _pair_text(run: GeneratorRun, a: str, b: str) -> tuple[str, float | None]:
    """'diff [CI] p' of a - b and its two-sided p (None when there is none)."""
    from prefbench.report.text import fmt_p

    p, sign = run.pair(a, b)
    if p is None or _num(p.get("difference")) is None:
        return "n/a", None
    lo, hi = _num(p.get("ci_low")), _num(p.get("ci_high"))
    if sign < 0:
        lo, hi = (None if hi is None else -hi), (None if lo is None else -lo)
    text = (f"{_fmt(sign * p['difference'], 3, True)} {_ci(lo, hi, 3, True)} {fmt_p(_num(p.get('p_value')))} "
            f"({p.get('n_common', 'n/a')} prompts)")
    return text, _num(p.get("p_value"))


def _stability_text(run: GeneratorRun) -> str:
    st = run.stability
    share, w = _num(st.get("p_observed_ranking")), _num(st.get("kendall_w"))
    if share is None:
        return "Ranking stability: n/a (fewer than two prompts)."
    return (f"Ranking stability: the whole ranking recurs in {share:.1%} of {st.get('n_resamples')} prompt resamples "
            f"(seed {st.get('seed')}); Kendall's W {_fmt(w, 3)}.")


def _footer(run: GeneratorRun) -> str:
    return f"status {run.status} · {run.date or 'n/a'} · commit {run.commit or 'n/a'}"


def markdown_section(runs: list[GeneratorRun]) -> list[str]:
    """Markdown lines of the section (none without generator runs)."""
    from prefbench.report.text import _table, md_code, md_escape

    if not runs:
        return []
    lines = ["## Generator benchmarks", "", INTRO, ""]
    for run in runs:
        lines += [f"### {md_escape(run.title)}", ""]
        lines += [f"> {md_escape(n)}" for n in run.notes()]
        if run.notes():
            lines.append("")
        if not run.generators:
            lines += [f"Not finished yet (status {md_escape(run.status)}); rerun its command. Run: {md_code(run.path)}",
                      ""]
            continue
        lines += _table(HEAD, [[md_escape(c) for c in _cells(g)] for g in run.generators]) + [""]
        lines += [_stability_text(run), ""]
        names = [g["name"] for g in run.generators]
        if len(names) > 1:
            lines += ["Paired comparisons (row − column, on shared prompts; 95% CI, two-sided p):", ""]
            rows = [[f"#{i + 1} {md_escape(a)}"] + ["—" if a == b else md_escape(_pair_text(run, a, b)[0])
                                                   for b in names] for i, a in enumerate(names)]
            lines += _table([""] + [f"#{j + 1}" for j in range(len(names))], rows) + [""]
        lines += [f"Run: {md_code(run.path)} ({md_escape(_footer(run))})", ""]
    return lines


def html_section(runs: list[GeneratorRun]) -> str:
    """The section as HTML ('' without generator runs)."""
    if not runs:
        return ""
    parts = ['<section id="generator-benchmarks"><h2>Generator benchmarks</h2>', f"<p>{escape(INTRO)}</p>"]
    for run in runs:
        parts.append(f'<section class="generators" id="{escape(run.anchor)}"><h3>{escape(run.title)}</h3>')
        parts += [f'<p class="note">{escape(n)}</p>' for n in run.notes()]
        if not run.generators:
            parts.append(f"<p>Not finished yet (status {escape(run.status)}). Run: <code>{escape(run.path)}</code></p>"
                         "</section>")
            continue
        head = "".join(f"<th>{escape(h)}</th>" for h in HEAD)
        body = []
        num = ' class="num"'
        for g in run.generators:
            body.append("<tr>" + "".join(f"<td{'' if i == 1 else num}>{escape(c)}</td>"
                                         for i, c in enumerate(_cells(g))) + "</tr>")
        parts.append(f'<table class="generators"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
        from prefbench.report.plots import ci_plot

        plotted = [(str(g["name"]), _num(g.get("mean")), _num(g.get("ci_low")), _num(g.get("ci_high")))
                   for g in run.generators if _num(g.get("mean")) is not None]
        if plotted:  # a reward's scale is unbounded: no [0, 1] clip
            parts.append(ci_plot(plotted, f"{run.title}: mean score per generator, 95% CI", xlabel="mean score",
                                 clip=(float("-inf"), float("inf"))))
        parts.append(f"<p>{escape(_stability_text(run))}</p>")
        names = [g["name"] for g in run.generators]
        if len(names) > 1:
            rows = []
            for i, a in enumerate(names):
                cells = []
                for b in names:
                    if a == b:
                        cells.append("<td>—</td>")
                        continue
                    text, p = _pair_text(run, a, b)
                    pair, sign = run.pair(a, b)
                    diff = _num((pair or {}).get("difference"))
                    cls = "num"
                    if p is not None and p < 0.05 and diff is not None:
                        cls += " sig-better" if sign * diff > 0 else " sig-worse"
                    cells.append(f'<td class="{cls}">{escape(text)}</td>')
                rows.append(f"<tr><th>#{i + 1} {escape(a)}</th>{''.join(cells)}</tr>")
            head = "".join(f"<th>#{j + 1}</th>" for j in range(len(names)))
            parts.append("<p class=\"sub\">Paired comparisons: row − column on shared prompts, 95% CI, two-sided p. "
                         "Green: row significantly better; red: significantly worse (p &lt; 0.05).</p>"
                         f'<table class="matrix"><thead><tr><th>row − column</th>{head}</tr></thead><tbody>'
                         + "".join(rows) + "</tbody></table>")
        parts.append(f'<p class="sub">Run: <code>{escape(run.path)}</code> ({escape(_footer(run))})</p></section>')
    parts.append("</section>")
    return "\n".join(parts)
