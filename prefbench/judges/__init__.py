"""Judge protocols: how to prompt a generative judge, parse its text and handle a parse failure.

A registry like the scorers' (:class:`prefbench.registry.Registry`): the built-in manifest below maps
names to ``"module:PROTOCOL"`` strings (one module per protocol, imported when used), and installed
packages add :class:`~prefbench.judges.base.JudgeProtocol` objects under the ``prefbench.judges``
entry-point group. Built-in names win a clash; a broken plugin is a warning. See docs/judges.md.
"""

from __future__ import annotations

from prefbench.registry import Entry, Registry

ENTRY_POINT_GROUP = "prefbench.judges"

BUILTIN: dict[str, Entry] = {e.name: e for e in [
    Entry("unifiedreward_think", "prefbench.judges.unifiedreward_think:PROTOCOL",
          "pairwise; <answer>Image 1|2 is better</answer> after <think>; unparsed: 0.5 each side (Pref-GRPO)"),
    Entry("unifiedreward", "prefbench.judges.unifiedreward:PROTOCOL",
          "pointwise; 1.0 'Final Score: x' or 2.0 Alignment/Coherence/Style (mean); unparsed: 0.0 (flow_grpo)"),
    Entry("rationalrewards", "prefbench.judges.rationalrewards:PROTOCOL",
          "pairwise; per-aspect Score A / Score B summed; unreadable or N/A aspect: 2.5; ties wrong"),
    Entry("mmrb2", "prefbench.judges.mmrb2:PROTOCOL",
          "pairwise; JSON better_response A/B, both orders; unparsed: not counted (MMRB2)"),
    Entry("genai_bench", "prefbench.judges.genai_bench:PROTOCOL",
          "pairwise 4-way; [[A>B]] / [[B>A]] / [[A=B=Good]] / [[A=B=Bad]]; unparsed: wrong (GenAI-Bench)"),
    Entry("vqascore", "prefbench.judges.vqascore:PROTOCOL",
          "pointwise; P('Yes') to 'Does this figure show ...?' (soft); text yes/no; unparsed: 0.0"),
]}

def _with_source(protocol, entry):
    return protocol if entry.source == "builtin" else protocol.with_source(entry.source)


_REGISTRY = None


def registry() -> Registry:
    """The judge-protocol registry (:class:`prefbench.registry.Registry` of JudgeProtocol)."""
    global _REGISTRY
    if _REGISTRY is None:
        from prefbench.judges.base import JudgeProtocol

        _REGISTRY = Registry("judge protocol", ENTRY_POINT_GROUP, BUILTIN, expect=JudgeProtocol, adapt=_with_source)
    return _REGISTRY


def entries(include_plugins: bool = True) -> dict[str, Entry]:
    """Every judge protocol's entry (built-ins first), without importing any."""
    return registry().entries(include_plugins)


def lookup(name: str):
    """The :class:`~prefbench.judges.base.JudgeProtocol` ``name``; a clear error with close names."""
    return registry().get(name)


def protocols(include_plugins: bool = True) -> dict:
    """Every judge protocol, loaded (plugins that are not a JudgeProtocol are warned about and skipped)."""
    return registry().all(include_plugins)


def describe(include_plugins: bool = True) -> list[dict]:
    """One dict per protocol for ``prefbench list``: name, source, description, kind, official
    policy and its source, the pinned template, the soft answer position (None: no soft read-out)."""
    out = []
    for name, entry in entries(include_plugins).items():
        row = {"name": name, "source": entry.source, "description": entry.description}
        try:
            p = lookup(name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is a line in the listing, not a crash
            row["error"] = str(exc)
            out.append(row)
            continue
        t = p.template
        row.update({
            "kind": p.kind, "official_policy": p.official_policy, "policy_source": p.policy_source,
            "template": None if t is None else {"repo": t.repo, "commit": t.commit, "path": t.path, "sha256": t.sha256,
                                                "literal": t.literal, "verified": t.verified},
            "answer": None if p.answer is None else {"prefix": p.answer.prefix, "candidates": list(p.answer.candidates)},
        })
        out.append(row)
    return out

