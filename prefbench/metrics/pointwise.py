"""Pointwise conventions (EvalMuse-40K; the NTIRE 2025 challenge's rules).

Items are the images of one prompt, each with a human total score (``Item.human``) and element
labels (``Item.elements``). Sources: DY-Evalab/EvalMuse ``utils.py`` (``compute_metrics``:
SRCC; PLCC after a four-parameter logistic fit started at [max y, min y, mean s, std s]) and
``eval.py`` (``calculate_accuracy``: both sides binarised at 0.5, correct / all); the challenge's
final score is PLCC/4 + SRCC/4 + accuracy/2.

A missing score is ranked below every scored image (so it counts against the scorer when the
humans liked the image) and the run's metrics say how many there were; a missing element
prediction counts wrong.
"""

from __future__ import annotations

import numpy as np

from prefbench.metrics.conventions import Convention, ItemData


def logistic4(x, b1, b2, b3, b4):
    """The four-parameter logistic: b2 + (b1 - b2) / (1 + exp(-(x - b3) / |b4|))."""
    return b2 + np.divide(b1 - b2, 1 + np.exp(np.negative(np.divide(x - b3, np.abs(b4)))))


def _impute(s: np.ndarray) -> np.ndarray:
    miss = np.isnan(s)
    if not miss.any():
        return s
    finite = s[~miss]
    low = (finite.min() - 1.0) if finite.size else 0.0
    return np.where(miss, low, s)


def srcc(h: np.ndarray, s: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(h, _impute(s))[0])


def plcc(h: np.ndarray, s: np.ndarray) -> float:
    """Pearson correlation of the humans with the logistic fit of the scores."""
    from scipy.optimize import curve_fit
    from scipy.stats import pearsonr

    s = _impute(s)
    p0 = [np.max(h), np.min(h), np.mean(s), np.std(s)]
    try:
        popt, _ = curve_fit(logistic4, s, h, p0=p0, maxfev=int(1e8))
    except (RuntimeError, ValueError, TypeError):  # TypeError: fewer points than parameters  # the fit did not converge: no PLCC, not a made-up one
        return float("nan")
    return float(pearsonr(h, logistic4(s, *popt))[0])


def element_accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    if len(labels) == 0:
        return float("nan")
    correct = ((labels >= 0.5) == (preds >= 0.5)) & ~np.isnan(preds)
    return float(correct.sum() / len(labels))


def _hs(d: ItemData) -> dict:
    return {"h": np.asarray(d.human, float), "s": d.scores}


def _element_pairs(d: ItemData) -> tuple[list[float], list[float]]:
    labels, preds = [], []
    for i, elements in enumerate(d.elements or []):
        given = (d.element_scores[i] if d.element_scores is not None else None) or {}
        for name, label in elements.items():
            if label is None:
                continue
            labels.append(float(label))
            p = given.get(name)
            preds.append(float(p) if isinstance(p, (int, float)) and not isinstance(p, bool) else float("nan"))
    return labels, preds


def _elements(d: ItemData):
    labels, preds = _element_pairs(d)
    if not labels:
        return 0.0, 0.0, 0
    acc = element_accuracy(np.asarray(labels), np.asarray(preds))
    return acc * len(labels), float(len(labels)), len(labels)


def _all_rows(d: ItemData) -> dict:
    labels, preds = _element_pairs(d)
    return {**_hs(d), "el": labels, "ep": preds}


def _final(rows: dict, options: dict) -> float:
    return plcc(rows["h"], rows["s"]) / 4 + srcc(rows["h"], rows["s"]) / 4 + element_accuracy(rows["el"], rows["ep"]) / 2


def _missing_summary(datas: list[ItemData]) -> dict:
    n = int(sum(np.isnan(d.scores).sum() for d in datas))
    return {"missing_score_rule": "ranked below every scored image", "n_missing_ranked_last": n}


def _final_summary(datas: list[ItemData]) -> dict:
    h = np.concatenate([np.asarray(d.human, float) for d in datas]) if datas else np.zeros(0)
    s = np.concatenate([d.scores for d in datas]) if datas else np.zeros(0)
    pairs = [_element_pairs(d) for d in datas]
    el = np.asarray([x for p in pairs for x in p[0]])
    ep = np.asarray([x for p in pairs for x in p[1]])
    return {**_missing_summary(datas), "plcc": plcc(h, s), "srcc": srcc(h, s),
            "element_accuracy": element_accuracy(el, ep),
            "n_missing_element_predictions": int(np.isnan(ep).sum())}


SRCC = Convention("srcc", "Spearman correlation of scores with the human scores, over all images (EvalMuse)",
                  rows=_hs, statistic=lambda r, o: srcc(r["h"], r["s"]), needs=("human",), measure="SRCC",
                  summary=_missing_summary)
PLCC = Convention(
    "plcc", "Pearson correlation after the four-parameter logistic fit of the scores (EvalMuse)",
    rows=_hs, statistic=lambda r, o: plcc(r["h"], r["s"]), needs=("human",), measure="PLCC",
    summary=_missing_summary, max_resamples=1000)
EVALMUSE_ELEMENT = Convention(
    "evalmuse_element", "EvalMuse element accuracy: element labels and predictions binarised at 0.5",
    per_item=_elements, needs=("elements", "element_scores"))
EVALMUSE = Convention("evalmuse", "EvalMuse challenge score: PLCC/4 + SRCC/4 + element accuracy/2",
                      rows=_all_rows, statistic=_final, needs=("human", "elements", "element_scores"),
                      measure="final score", summary=_final_summary, max_resamples=1000)

#: this module's conventions (each also named in prefbench.metrics.conventions.MANIFEST)
CONVENTIONS = [SRCC, PLCC, EVALMUSE_ELEMENT, EVALMUSE]
