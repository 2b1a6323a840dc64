"""HPDv3 (HPSv3's dataset, MizzenAI/HPDv3) test pairs, in the published layout.

``<data-dir>/test.json`` is a list of ``{prompt, path1, path2, model1, model2}`` with image paths
relative to the data dir; **path1 is always the preferred image** (HPSv3 README), so image 0 of
every item is the preferred one (ranks [1, 2]) and ``image_index`` 0/1 are path1/path2. A scorer
that sees both images at once must not learn that: the pairwise scorers draw which image they
show first with an RNG keyed by (seed, item id), and record it per pair (``anchor_index``).
Item ids are 0-based positions in the file.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.data._io import check_text, read_json, require_file
from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import DatasetSpec, Download
from prefbench.errors import DataError

SPEC = DatasetSpec(
    "hpdv3", ("test",), "hpdv3", "prefbench.data.hpdv3",
    "HPDv3 test pairs (HPSv3, Ma et al. 2025): path1 is the preferred image", kind="pair",
    # the images ship only as one split tar archive of the whole set (images.tar.gz.00, .01, ...;
    # 1.08M images per the HPSv3 README): the test pairs need it all
    download=Download("MizzenAI/HPDv3", {"*": ("{split}.json", "images.tar.gz.*")}, archives=("images.tar.gz.*",),
                      note="the split's JSON and the image archive parts images.tar.gz.* (the whole image set, "
                           "unpacked into images/; hundreds of GB)"),
    train_splits={"pairwise": ("train", "test")},  # the repository's train.json has test.json's layout
)


def load(split: str, data_dir: Path, with_images: bool = True) -> Split:
    path = require_file(data_dir / f"{split}.json", "hpdv3",
                        f"Provide HPDv3's {split}.json in {data_dir} with its images at the paths it names, "
                        f"relative to {data_dir} (or run `prefbench download hpdv3 --data-dir {data_dir}`).")
    raw = read_json(path)
    if not isinstance(raw, list):
        raise DataError("expected a JSON list of pairs", path)
    items = []
    for pos, obj in enumerate(raw):
        where = f"row {pos}"
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected an object", path)
        prompt = check_text(obj, "prompt", path, where)
        paths = [check_text(obj, k, path, where) for k in ("path1", "path2")]
        refs = [ImageRef(key=p, path=data_dir / p) for p in paths]
        meta = {k: obj[k] for k in ("model1", "model2", "choice_dist", "confidence") if k in obj}
        items.append(Item(str(pos), prompt, refs, [1, 2], meta=meta))
    return Split("hpdv3", split, "hpdv3", items, source=str(path), root=data_dir)
