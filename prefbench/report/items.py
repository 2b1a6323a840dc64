"""The HTML item browser: prompts, candidate images (as inline thumbnails), human ranks, every
run's score and the scorers' reasoning traces.

This is the one part of the report that reads more than run.json: it reloads the dataset from
the run's recorded source (checking its content hash) and reads the runs' ``samples.jsonl``,
only for the items it shows. Nothing here writes to a run folder.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from prefbench.record import DatasetInfo, RunRecord
from prefbench.report.leaderboard import Group
from prefbench.report.markdown import shown_text
from prefbench.report.runs import RunView
from prefbench.store import SAMPLES_FILE, read_samples

#: characters of one reasoning trace shown before it is cut (keeps the page a sane size)
TRACE_CHARS = 4000
THUMB_PX = 160


@dataclass
class Browser:
    """What the browser shows for one split: items and the runs (columns) that scored them."""

    runs: list[tuple[int, RunView]]
    items: list = field(default_factory=list)
    samples: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _data_dir(rec: RunRecord) -> Path | None:
    from prefbench.provenance import expand_path

    ds = rec.dataset or DatasetInfo()
    if ds.data_dir:  # portable form: relative to the current directory, ~, or absolute
        path = expand_path(ds.data_dir)
        return path if path.exists() else None
    source = ds.source or ""  # runs recorded before data_dir: the annotation's path
    path = Path(source) if source else None
    if path is None or not path.exists():
        return None
    if path.is_dir() or path.suffix == ".jsonl":
        return path
    return path.parent


def load_browser(group: Group, n_items: int) -> Browser:
    """Items of the best run's data (first ``n_items`` in dataset order) and the samples of every
    run in the group that scored the same data."""
    from prefbench.data import dataset_info, load_dataset
    from prefbench.errors import PrefbenchError

    top = group.runs[0]
    runs = [(i, r) for i, r in enumerate(group.runs) if r.content_hash == top.content_hash]
    browser = Browser(runs)
    others = [f"#{i + 1}" for i, r in enumerate(group.runs) if r.content_hash != top.content_hash]
    if others:
        browser.notes.append(f"runs {', '.join(others)} scored other data and are not shown here")
    rec = top.record
    ds = rec.dataset or DatasetInfo()
    data_dir = _data_dir(rec)
    try:
        info = dataset_info(top.dataset)
        if data_dir is None and info.needs_data_dir:
            browser.notes.append(f"dataset files not found at {ds.data_dir or ds.source!r}; "
                                 "no items to show")
            return browser
        split = load_dataset(top.dataset, top.split, data_dir, limit=ds.limit)
    except (PrefbenchError, OSError, ValueError) as exc:
        browser.notes.append(f"could not reload the dataset ({exc}); no items to show")
        return browser
    if split.content_hash() != top.content_hash:
        browser.notes.append(f"the dataset at {split.source!r} differs from the scored one (content hash "
                             f"{split.content_hash()[:8]} vs {str(top.content_hash)[:8]}); no items to show")
        return browser
    browser.items = split.items[:n_items]
    if len(split.items) > n_items:
        browser.notes.append(f"showing the first {n_items} of {len(split.items)} items (prefbench report --items N "
                             "shows more)")
    wanted = {it.item_id for it in browser.items}
    for _, r in runs:
        path = r.file.parent / SAMPLES_FILE
        if not path.is_file():
            browser.notes.append(f"{r.path}: no {SAMPLES_FILE}; its scores are not shown")
            continue
        try:
            rows = read_samples(path, repair=False, strict=True)
        except PrefbenchError as exc:  # a bad row, a symlink: the report changes and follows nothing
            browser.notes.append(f"{r.path}: unreadable {exc}; its scores are not shown")
            continue
        browser.samples[r.path] = {key: row for key, row in rows.items() if key[0] in wanted}
    return browser


def thumbnail(ref) -> str | None:
    """A data: URI JPEG thumbnail of an image, or None when it cannot be decoded."""
    from prefbench.errors import ImageError

    try:
        img = ref.open()
    except (ImageError, OSError):
        return None
    img.thumbnail((THUMB_PX, THUMB_PX))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=82, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _cut(text: str) -> str:
    return shown_text(text, TRACE_CHARS)


def _traces(detail: dict) -> list[tuple[str, str]]:
    """(caption, text) of every reasoning trace in a sample's detail: ``traces`` (strings) and
    the ``text`` of each rollout record (the VLM scorers' format)."""
    out = []
    traces = detail.get("traces", detail.get("trace"))
    if traces is not None:
        for t, text in enumerate(traces if isinstance(traces, list) else [traces]):
            text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, sort_keys=True)
            out.append((f"trace {t + 1}", _cut(text)))
    rollouts = detail.get("rollouts")
    if isinstance(rollouts, list):
        for t, roll in enumerate(rollouts):
            if isinstance(roll, dict) and isinstance(roll.get("text"), str):
                facts = [str(roll["order"])] if roll.get("order") else []
                if isinstance(roll.get("score"), (int, float)):
                    facts.append(f"score {roll['score']:.4g}")
                facts += [flag for flag in ("forced",) if roll.get(flag)]
                out.append((f"rollout {t + 1}" + (f" ({', '.join(facts)})" if facts else ""), _cut(roll["text"])))
    return out


def _rollout_scores(detail: dict) -> list[str]:
    """Per-rollout scores: a list of numbers, or the ``score`` of each rollout record."""
    values = detail.get("rollout_scores")
    rollouts = detail.get("rollouts")
    if not isinstance(values, list) and isinstance(rollouts, list):
        values = [r.get("score") if isinstance(r, dict) else r for r in rollouts]
    if not isinstance(values, list):
        return []
    return [f"{v:.3g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "—" for v in values]


_SHOWN_ELSEWHERE = {"traces", "trace", "rollouts", "rollout_scores", "forced", "anchor_index", "anchor", "prob"}


def _score_cell(row: dict | None) -> str:
    if row is None:
        return '<td class="missing">missing</td>'
    detail = row.get("detail") or {}
    flags = []
    if row.get("forced"):
        flags.append("forced")
    if row.get("anchor_index") is not None and row.get("anchor_index") == row.get("image_index"):
        flags.append("anchor")
    scores = _rollout_scores(detail)
    sub = f'<div class="sub">rollouts: {escape(", ".join(scores))}</div>' if scores else ""
    shown = dict(detail)
    if row.get("generated_tokens") is not None:  # a typed field (older rows kept it in detail)
        shown["generated_tokens"] = row["generated_tokens"]
    for key in sorted(set(shown) - _SHOWN_ELSEWHERE):  # e.g. an oracle's flaws, token counts
        value = json.dumps(shown[key], ensure_ascii=False, sort_keys=True, default=str)
        value = value if len(value) <= 120 else value[:119] + "…"
        sub += f'<div class="sub">{escape(str(key))}: {escape(value)}</div>'
    if row.get("status") != "ok" or not isinstance(row.get("score"), (int, float)):
        err = escape(str(row.get("error") or ""))
        return f'<td class="bad" title="{err}">{escape(str(row.get("status")))}{sub}</td>'
    flag = f' <span class="flag">{" ".join(flags)}</span>' if flags else ""
    return f'<td>{row["score"]:.4f}{flag}{sub}</td>'


def _item_accuracy(r: RunView, item_id: str) -> str:
    pp = r.per_prompt()
    if pp is None or item_id not in pp.item_ids:
        return "n/a"
    k = pp.item_ids.index(item_id)
    return f"{pp.num[k]:g}/{pp.den[k]:g}"


def render_browser(browser: Browser) -> str:
    """The browser as HTML: one collapsible block per item, no script needed."""
    parts = [f'<p class="note">{escape(n)}</p>' for n in browser.notes]
    for n, item in enumerate(browser.items):
        credit = " · ".join(f"#{i + 1} {_item_accuracy(r, item.item_id)}" for i, r in browser.runs)
        opened = " open" if n == 0 else ""  # the first item shows what a row holds
        parts.append(f'<details class="item"{opened} data-item="{escape(item.item_id)}"><summary><code>'
                     f'{escape(shown_text(item.item_id))}</code> <span class="prompt">{escape(shown_text(item.prompt))}</span>'
                     f' <span class="sub">credit: {escape(credit)}</span></summary>')
        # the run's label under its number: a column of "#3" alone says nothing
        head = "".join(f'<th title="{escape(r.label)}">#{i + 1}<div class="sub">{escape(r.label)}</div></th>'
                       for i, r in browser.runs)
        parts.append(f'<table class="images"><thead><tr><th>image</th><th>human rank</th>{head}</tr></thead><tbody>')
        trace_blocks = []
        for k, ref in enumerate(item.images):
            uri = thumbnail(ref)
            img = (f'<img src="{uri}" alt="{escape(ref.key)}" loading="lazy">' if uri
                   else '<span class="bad">image unavailable</span>')
            cells = []
            for i, r in browser.runs:
                row = browser.samples.get(r.path, {}).get((item.item_id, k))
                cells.append(_score_cell(row) if r.path in browser.samples else '<td class="missing">n/a</td>')
                for caption, text in _traces((row or {}).get("detail") or {}):
                    trace_blocks.append(f'<details class="trace"><summary>#{i + 1} {escape(r.label)} · image {k}'
                                        f" · {escape(caption)}</summary><pre>{escape(text)}</pre></details>")
            parts.append(f'<tr><td class="thumb">{img}<div class="sub">{escape(ref.key)}</div></td>'
                         f'<td class="rank">{item.ranks[k]:g}</td>{"".join(cells)}</tr>')
        parts.append("</tbody></table>")
        parts += trace_blocks
        parts.append("</details>")
    return "\n".join(parts)
