"""A judge protocol's template, filled for one prompt and its images: the chat messages the ``judge``
scorer sends to an engine (``{"type": "image"}`` placeholders in the order the images are shown).

The protocol's :class:`~prefbench.judges.base.PromptLayout` says which placeholder the prompt replaces
and where the images go. The prompt is put in by plain string replacement, so braces in a prompt or
elsewhere in the template stay as they are.
"""

from __future__ import annotations

import re

from prefbench.errors import UsageError
from prefbench.judges.base import JudgeProtocol


def check_template(protocol: JudgeProtocol, text: str, where: str) -> None:
    """A clear error when ``text`` lacks the prompt placeholder or has the wrong image markers."""
    layout = protocol.layout
    full = text + layout.suffix
    if layout.prompt not in full:
        raise UsageError(f"judge protocol {protocol.name!r}: the template ({where}) has no {layout.prompt!r}, "
                         "where the prompt goes")
    n = 2 if protocol.kind == "pairwise" else 1
    _split(protocol, full, n, where)


def _split(protocol: JudgeProtocol, text: str, n_images: int, where: str) -> list[str | int]:
    """The template as text pieces and image indices, in order."""
    markers = protocol.layout.images
    if not markers:
        return [*range(n_images), text]
    pattern = re.compile("|".join(re.escape(m) for m in sorted(set(markers), key=len, reverse=True)))
    found = [m.group() for m in pattern.finditer(text)]
    if len(set(markers)) == 1:
        if len(found) != n_images:
            raise UsageError(f"judge protocol {protocol.name!r}: the template ({where}) has {len(found)} "
                             f"{markers[0]!r} marker(s); it shows {n_images} image(s)")
        order = list(range(n_images))
    else:
        if sorted(found) != sorted(markers[:n_images]):
            raise UsageError(f"judge protocol {protocol.name!r}: the template ({where}) must hold each of "
                             f"{', '.join(map(repr, markers[:n_images]))} once, found {found}")
        order = [markers.index(m) for m in found]
    out: list[str | int] = []
    for piece, image in zip(pattern.split(text), [*order, None]):
        out.append(piece)
        if image is not None:
            out.append(image)
    return out


def render_messages(protocol: JudgeProtocol, text: str, prompt: str,
                    system: str | None = None) -> tuple[list[dict], list[int]]:
    """(messages, image order): one user turn (plus ``system`` when given), the template with the
    prompt put in and its image markers replaced by image placeholders; the order lists, per
    placeholder, which image it shows (0 = the image shown first: "Image 1", "A", the left one)."""
    layout = protocol.layout
    n = 2 if protocol.kind == "pairwise" else 1
    content: list[dict] = []
    order: list[int] = []
    for piece in _split(protocol, text + layout.suffix, n, "template"):
        if isinstance(piece, int):
            content.append({"type": "image"})
            order.append(piece)
        else:
            piece = piece.replace(layout.prompt, prompt)
            if piece.strip():
                content.append({"type": "text", "text": piece})
    messages = [{"role": "user", "content": content}]
    if system:
        messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
    return messages, order
