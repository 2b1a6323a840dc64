"""Scoring one batch into sample rows: the unit every executor runs (this process, a Ray actor,
a shard). A batch that raises is split so that only the culprit image fails (prefbench.isolate);
a batch that still crashes becomes retryable error rows, never a lost run."""

from __future__ import annotations


def sample_row(item, k: int, result) -> dict:
    """The sample row of image ``k`` of ``item`` scored as ``result`` (an ImageResult)."""
    row = {"item_id": item.item_id, "image_index": k, "image": item.images[k].key,
           "score": result.score, "status": result.status}
    if result.error:
        row["error"] = result.error
    # prob / anchor_index / forced / generated_tokens / retryable (a transient failure, e.g. a
    # server down: retried on the next run)
    row.update(result.typed_fields())
    if result.detail:
        row["detail"] = result.detail
    return row


def score_chunk(scorer, chunk, log) -> list[dict]:
    """One batch of ``(item, image indices)`` -> its sample rows; a crashing batch becomes error
    rows (retryable) instead of losing the run. In-process and on a Ray worker alike."""
    from prefbench.isolate import score_isolated

    try:
        results = score_isolated(scorer, chunk, log)  # a raising batch is split: only the culprit fails
        rows = []
        for (item, indices), res in zip(chunk, results, strict=True):
            for k in indices:
                r = res.get(k)
                if r is None:
                    raise RuntimeError(f"scorer returned no result for item {item.item_id} image {k}")
                rows.append(sample_row(item, k, r))
        return rows
    except Exception as exc:  # a crashing batch must not lose the rest of the run
        log(f"warning: batch at item {chunk[0][0].item_id} failed: {exc!r}; its images are marked "
            "error (retried on the next run)")
        return failed_rows(chunk, f"scorer failed: {exc!r}")


def failed_rows(chunk, error: str) -> list[dict]:
    return [{"item_id": item.item_id, "image_index": k, "image": item.images[k].key, "score": None,
             "status": "error", "error": error, "retryable": True} for item, indices in chunk for k in indices]


def chunks_of(tasks: list, batch: int) -> list[list]:
    return [tasks[b:b + batch] for b in range(0, len(tasks), batch)]
