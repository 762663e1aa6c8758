"""1:N identification in NIST FRTE terms: rank-1 rate and FNIR at a fixed FPIR.

Protocol (`split`): subjects with two or more images with a face are enrolled with one
image each (the first in manifest order) as the gallery; their other images are mated
searches; every image of a subject with a single image is a non-mated search (that
subject is not enrolled). The gallery is searched with the exact index the product uses.

- rank-1 identification rate: mated searches whose best gallery hit is the mate;
- FPIR(t): non-mated searches whose best hit scores at least t;
- FNIR(t): mated searches whose mate is not the rank-1 hit with a score of at least t;
  the threshold for "FNIR at FPIR x" is the lowest t with FPIR(t) <= x.
An image without a face cannot be searched: a mated one counts as a miss, a non-mated
one as a correct rejection, and both are counted in the report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facegate.store.vector_index import ExactIndex
from facegate.vision.calibration import similarity_from_cosine
from facegate.vision.score_normalization import Scorer


@dataclass(frozen=True, slots=True)
class Split:
    gallery: list[tuple[str, str]]  # (image, subject)
    mated: list[tuple[str, str]]
    nonmated: list[tuple[str, str]]


def split(rows: Sequence[tuple[str, str]], has_face: set[str]) -> Split:
    """Gallery, mated and non-mated searches from (image, subject) rows; see module doc."""
    by_subject: dict[str, list[str]] = defaultdict(list)
    for image, subject in rows:
        if subject:
            by_subject[subject].append(image)
    gallery, mated, nonmated = [], [], []
    for subject, images in by_subject.items():
        usable = [i for i in images if i in has_face]
        if len(images) == 1:
            nonmated.append((images[0], subject))
        elif usable:
            gallery.append((usable[0], subject))
            mated += [(i, subject) for i in images if i != usable[0]]
    return Split(gallery, mated, nonmated)


@dataclass(frozen=True, slots=True)
class IdentificationReport:
    n_gallery: int
    n_mated: int
    n_nonmated: int
    n_unsearchable: int
    rank1_rate: float
    fnir_at_fpir: dict[str, float]
    threshold_at_fpir: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rank1_rate": self.rank1_rate,
            "n_gallery": self.n_gallery,
            "n_mated": self.n_mated,
            "n_nonmated": self.n_nonmated,
            "n_unsearchable": self.n_unsearchable,
        }
        for key, value in self.fnir_at_fpir.items():
            out[f"fnir_at_fpir_{key}"] = value
            out[f"threshold_at_fpir_{key}"] = round(self.threshold_at_fpir[key], 4)
        return out


def _best(index: ExactIndex, labels: list[str], probes: list[np.ndarray]) -> tuple[list[str | None], np.ndarray]:
    if not probes:
        return [], np.zeros(0)
    keys, sims = index.search(np.stack(probes), 1)
    return [labels[k] if k >= 0 else None for k in keys[:, 0]], similarity_from_cosine(sims[:, 0])


def _best_scored(
    scorer: Scorer, gallery: np.ndarray, labels: list[str], probes: list[np.ndarray]
) -> tuple[list[str | None], np.ndarray]:
    """Best gallery hit per probe by the scorer's (e.g. normalized) scores, exhaustively."""
    if not probes:
        return [], np.zeros(0)
    scores = scorer.matrix(np.stack(probes), gallery)
    best = np.argmax(scores, axis=1)
    return [labels[k] for k in best], scores[np.arange(len(best)), best]


def identify(
    split_: Split, templates: dict[str, np.ndarray], fpirs: Sequence[float] = (1e-2, 1e-3),
    scorer: Scorer | None = None,
) -> IdentificationReport:
    """Search every probe against the gallery and compute the FRTE metrics; with a
    normalizing `scorer`, probes are ranked by its scores over the whole gallery."""
    labels = [s for _, s in split_.gallery]
    gallery = np.stack([templates[i] for i, _ in split_.gallery])
    mated = [(i, s) for i, s in split_.mated if i in templates]
    nonmated = [(i, s) for i, s in split_.nonmated if i in templates]
    if scorer is not None and scorer.normalized:
        m_hit, m_score = _best_scored(scorer, gallery, labels, [templates[i] for i, _ in mated])
        _, n_score = _best_scored(scorer, gallery, labels, [templates[i] for i, _ in nonmated])
    else:
        index = ExactIndex(gallery.shape[1])
        index.add(np.arange(len(labels), dtype=np.int64), gallery)
        m_hit, m_score = _best(index, labels, [templates[i] for i, _ in mated])
        _, n_score = _best(index, labels, [templates[i] for i, _ in nonmated])
    correct = np.array([hit == s for hit, (_, s) in zip(m_hit, mated)], dtype=bool)
    n_mated = len(split_.mated)  # unsearchable mated images count as misses
    fnir, thresholds = {}, {}
    for fpir in fpirs:
        key = f"{fpir:.0e}".replace("e-0", "e-")
        # lowest t such that at most fpir of the non-mated searches score >= t
        allowed = int(np.floor(fpir * len(split_.nonmated)))
        ordered = np.sort(n_score)[::-1]
        t = float(np.nextafter(ordered[allowed], np.inf)) if allowed < len(ordered) else 0.0
        thresholds[key] = t
        fnir[key] = 1.0 - float(np.sum(correct & (m_score >= t))) / max(n_mated, 1)
    return IdentificationReport(
        n_gallery=len(labels),
        n_mated=n_mated,
        n_nonmated=len(split_.nonmated),
        n_unsearchable=(n_mated - len(mated)) + (len(split_.nonmated) - len(nonmated)),
        rank1_rate=float(correct.sum()) / max(n_mated, 1),
        fnir_at_fpir=fnir,
        threshold_at_fpir=thresholds,
    )
