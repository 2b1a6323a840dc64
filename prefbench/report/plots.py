"""Inline SVG plots, written by hand so the HTML needs no plotting library and no network.

Every label is escaped; coordinates are printed with fixed precision so output is
byte-stable. Each function returns one ``<svg class="plot ...">`` element as a string.
"""

from __future__ import annotations

import math
from html import escape

#: Okabe-Ito colours: distinguishable for colour-blind readers
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _f(x: float) -> str:
    return f"{x:.1f}"


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values covering [lo, hi]."""
    span = hi - lo if hi > lo else 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], start
    while t <= hi + 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _domain(values: list[float], pad: float = 0.02, clip: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    span = max(hi - lo, 0.05)
    return max(clip[0], lo - pad - 0.05 * span), min(clip[1], hi + pad + 0.05 * span)


def _char_w(c: str) -> float:
    """A generous width of one character of the 12 px sans-serif labels, by glyph class."""
    if c in "WM@":
        return 12.0
    if c in "mw%":
        return 10.5
    if c.isupper():
        return 8.8
    if c in " ilj.,:;'|!It()[]":
        return 4.0
    return 7.2  # other lowercase, digits, '·', '…' and anything else


def text_width(text: str, bold: bool = False) -> float:
    """How wide ``text`` may render: the server cannot measure it, so the layout (a label column
    as wide as its longest label, a picture as wide as its title) uses this upper estimate."""
    return sum(map(_char_w, text)) * (1.1 if bold else 1.0)


def _short(text: str, n: int = 38) -> str:
    """Cut in the middle: the start names the scorer, the end the options that tell runs apart."""
    if len(text) <= n:
        return text
    head = (n - 1) // 2
    return text[:head] + "…" + text[len(text) - (n - 1 - head):]


def ci_plot(rows: list[tuple[str, float, float | None, float | None]], title: str, xlabel: str = "accuracy",
            clip: tuple[float, float] = (0.0, 1.0)) -> str:
    """Horizontal dot-and-whisker plot: one row per run (label, value, ci_low, ci_high); the axis
    stays inside ``clip`` (an accuracy's [0, 1]; a reward's scale has no bounds: ``(-inf, inf)``)."""
    # the label column as wide as its longest label and the picture as wide as its title, so that
    # neither is clipped at the SVG's edge (Chromium showed "#10 naive_sampling" as "0 naive_sampling")
    labels = [_short(label) for label, *_ in rows]
    left = max(120.0, 12 + max((text_width(t) for t in labels), default=0) + 8)
    right, top, row_h = 30, 34, 26
    width = max(760.0, left + 360, 8 + text_width(title, bold=True) + 8)
    height = top + row_h * len(rows) + 44
    values = [v for _, a, lo, hi in rows for v in (a, lo, hi) if v is not None]
    x0, x1 = _domain(values, clip=clip)
    ticks = nice_ticks(x0, x1)
    x0, x1 = min(x0, ticks[0]), max(x1, ticks[-1])

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (width - left - right)

    parts = [f'<svg class="plot ci-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_f(width)} {height}" '
             f'width="{_f(width)}" height="{height}" role="img" aria-label="{escape(title)}" {FONT}>',
             f"<title>{escape(title)}</title>",
             f'<text x="8" y="18" font-weight="bold">{escape(title)}</text>']
    bottom = top + row_h * len(rows)
    for t in ticks:
        x = _f(sx(t))
        parts.append(f'<line x1="{x}" y1="{top - 6}" x2="{x}" y2="{bottom}" stroke="#ddd"/>')
        parts.append(f'<text x="{x}" y="{bottom + 16}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<text x="{_f((left + width - right) / 2)}" y="{bottom + 34}" text-anchor="middle">'
                 f"{escape(xlabel)}</text>")
    for k, (label, acc, lo, hi) in enumerate(rows):
        y = top + row_h * k + row_h / 2
        colour = PALETTE[0]
        parts.append(f'<g class="ci-row"><title>{escape(label)}: {acc:.4f}'
                     + (f" [{lo:.4f}, {hi:.4f}]" if lo is not None and hi is not None else "") + "</title>")
        parts.append(f'<text x="{_f(left - 8)}" y="{_f(y + 4)}" text-anchor="end">{escape(labels[k])}</text>')
        if lo is not None and hi is not None:
            parts.append(f'<line x1="{_f(sx(lo))}" y1="{_f(y)}" x2="{_f(sx(hi))}" y2="{_f(y)}" '
                         f'stroke="{colour}" stroke-width="2"/>')
            for v in (lo, hi):
                parts.append(f'<line x1="{_f(sx(v))}" y1="{_f(y - 5)}" x2="{_f(sx(v))}" y2="{_f(y + 5)}" '
                             f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<circle cx="{_f(sx(acc))}" cy="{_f(y)}" r="4.5" fill="{colour}"/></g>')
    parts.append("</svg>")
    return "\n".join(parts)


def _legend(labels: list[str], x: float, y: float) -> list[str]:
    out = []
    for k, label in enumerate(labels):
        yy = y + 18 * k
        out.append(f'<rect x="{_f(x)}" y="{_f(yy - 9)}" width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/>')
        out.append(f'<text x="{_f(x + 18)}" y="{_f(yy + 1)}">{escape(_short(label, 60))}</text>')
    return out


def line_plot(series: list[tuple[str, list[tuple[float, float, float | None, float | None]]]], title: str,
              xlabel: str, ylabel: str, log2_x: bool = True) -> str:
    """Lines with CI error bars: series of (label, [(x, y, y_low, y_high), ...])."""
    width, left, right, top = 640, 64, 24, 34
    plot_h = 260
    height = top + plot_h + 50 + 18 * len(series)
    xs = sorted({p[0] for _, pts in series for p in pts})
    tx = (lambda v: math.log2(v)) if log2_x and xs[0] > 0 else (lambda v: v)
    xa, xb = tx(xs[0]), tx(xs[-1])
    if xa == xb:
        xa, xb = xa - 1, xb + 1
    ys = [v for _, pts in series for p in pts for v in p[1:] if v is not None]
    y0, y1 = _domain(ys)
    yt = nice_ticks(y0, y1, 5)
    y0, y1 = min(y0, yt[0]), max(y1, yt[-1])

    def sx(v: float) -> float:
        return left + 10 + (tx(v) - xa) / (xb - xa) * (width - left - right - 20)

    def sy(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * plot_h

    parts = [f'<svg class="plot line-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" {FONT}>',
             f"<title>{escape(title)}</title>", f'<text x="{left}" y="18" font-weight="bold">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{plot_h}" fill="none" stroke="#999"/>']
    for t in yt:
        parts.append(f'<line x1="{left}" y1="{_f(sy(t))}" x2="{width - right}" y2="{_f(sy(t))}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{_f(sy(t) + 4)}" text-anchor="end">{t:g}</text>')
    for v in xs:
        parts.append(f'<text x="{_f(sx(v))}" y="{top + plot_h + 16}" text-anchor="middle">{v:g}</text>')
    parts.append(f'<text x="{_f((left + width - right) / 2)}" y="{top + plot_h + 34}" text-anchor="middle">'
                 f"{escape(xlabel)}</text>")
    parts.append(f'<text transform="translate(14 {_f(top + plot_h / 2)}) rotate(-90)" text-anchor="middle">'
                 f"{escape(ylabel)}</text>")
    for k, (label, pts) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        path = " ".join(f"{_f(sx(x))},{_f(sy(y))}" for x, y, _, _ in pts)
        parts.append(f'<g class="series"><title>{escape(label)}</title>')
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, lo, hi in pts:
            if lo is not None and hi is not None:
                parts.append(f'<line x1="{_f(sx(x))}" y1="{_f(sy(lo))}" x2="{_f(sx(x))}" y2="{_f(sy(hi))}" '
                             f'stroke="{colour}"/>')
            parts.append(f'<circle cx="{_f(sx(x))}" cy="{_f(sy(y))}" r="3.5" fill="{colour}"/>')
        parts.append("</g>")
    parts += _legend([s[0] for s in series], left, top + plot_h + 56)
    parts.append("</svg>")
    return "\n".join(parts)


def reliability_plot(series: list[tuple[str, list[dict]]], title: str) -> str:
    """Reliability diagram: observed frequency against mean predicted probability per bin,
    marker area proportional to the bin's count; the diagonal is perfect calibration."""
    size, left, top = 300, 56, 34
    width = left + size + 24
    height = top + size + 50 + 18 * len(series)

    def sx(v: float) -> float:
        return left + v * size

    def sy(v: float) -> float:
        return top + (1 - v) * size

    parts = [f'<svg class="plot reliability-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" {FONT}>',
             f"<title>{escape(title)}</title>", f'<text x="{left}" y="18" font-weight="bold">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#999"/>',
             f'<line x1="{_f(sx(0))}" y1="{_f(sy(0))}" x2="{_f(sx(1))}" y2="{_f(sy(1))}" stroke="#888" '
             'stroke-dasharray="4 4"/>']
    for t in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<text x="{_f(sx(t))}" y="{top + size + 16}" text-anchor="middle">{t:g}</text>')
        parts.append(f'<text x="{left - 6}" y="{_f(sy(t) + 4)}" text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{_f(left + size / 2)}" y="{top + size + 34}" text-anchor="middle">'
                 "mean predicted P(image beats anchor)</text>")
    parts.append(f'<text transform="translate(14 {_f(top + size / 2)}) rotate(-90)" text-anchor="middle">'
                 "observed frequency</text>")
    total = max((sum(int(b.get("count", 0)) for b in bins) for _, bins in series), default=1) or 1
    for k, (label, bins) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        pts = sorted((float(b["mean_prob"]), float(b["freq"]), int(b.get("count", 0))) for b in bins)
        parts.append(f'<g class="series"><title>{escape(label)}</title>')
        parts.append(f'<polyline points="{" ".join(f"{_f(sx(p))},{_f(sy(q))}" for p, q, _ in pts)}" fill="none" '
                     f'stroke="{colour}" stroke-width="1.5"/>')
        for p, q, n in pts:
            r = 2.5 + 9 * math.sqrt(n / total)
            parts.append(f'<circle cx="{_f(sx(p))}" cy="{_f(sy(q))}" r="{_f(r)}" fill="{colour}" fill-opacity="0.6">'
                         f"<title>{p:.3f} → {q:.3f} (n={n})</title></circle>")
        parts.append("</g>")
    parts += _legend([s[0] for s in series], left, top + size + 56)
    parts.append("</svg>")
    return "\n".join(parts)
