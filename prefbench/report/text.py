"""Text helpers the report's sections share: number formats, Markdown escaping, tables. A leaf of
the report package (the sections import it; it imports none of them)."""

from __future__ import annotations


def fmt(x: float | None, digits: int = 4, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    if round(x, digits) == 0:
        x = 0.0  # no "-0.000"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def fmt_ci(lo: float | None, hi: float | None, digits: int = 4, signed: bool = False) -> str:
    if lo is None or hi is None:
        return "n/a"
    return f"[{fmt(lo, digits, signed)}, {fmt(hi, digits, signed)}]"


def fmt_p(p: float | None) -> str:
    """``p=0.123`` or ``p<0.001``."""
    if p is None:
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.1f}" if x < 1000 else f"{x:,.0f}"


#: characters that are never shown raw: C0/C1 controls (NUL, ESC, ...) and the bidirectional
#: overrides and isolates that can make text read differently from what it is (RTL override)
_INVISIBLE = {c: f"\\u{c:04x}" for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0),
                                          *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]}
#: characters of one prompt shown in the report before it is cut (a 1 MB prompt stays a sane page)
PROMPT_CHARS = 2000


def shown_text(text: object, limit: int | None = PROMPT_CHARS) -> str:
    """Text from a dataset or a model as the report shows it: controls and bidi overrides made
    visible as ``\\uXXXX``, and cut at ``limit`` characters with a note of the full length."""
    s = str(text)
    if limit is not None and len(s) > limit:
        s = s[:limit] + f"… [cut: {len(s)} characters in all]"
    return s.translate(_INVISIBLE)


def md_escape(text: object) -> str:
    """Text from datasets and models, made inert in a Markdown table cell: HTML is escaped
    (Markdown renderers pass raw HTML through), pipes and backticks are escaped, newlines go,
    controls and bidi overrides are shown as escapes, and very long text is cut."""
    s = shown_text(text)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\\", "\\\\"), ("|", "\\|"), ("`", "\\`"),
                 ("*", "\\*"), ("_", "\\_"), ("[", "\\["), ("]", "\\]")):
        s = s.replace(a, b)
    return " ".join(s.split())


def md_code(text: object) -> str:
    """A run path as inline code (paths may hold characters Markdown would interpret)."""
    s = " ".join(str(text).replace("|", "\\|").split())
    fence = "``" if "`" in s else "`"
    return f"{fence}{s}{fence}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out
