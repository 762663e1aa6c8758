"""Fair score normalization: one similarity scale whose false-match rate varies less by group.

The matcher's impostor scores are not alike across kinds of faces: on LFW, two different
Asian people score higher than two different White people, so one global threshold
gives some groups many times the false-match rate of others (docs/fairness.md). Fair
score normalization (Terhörst, Kolf, Damer, Kirchbuchner and Kuijper, "Post-comparison
mitigation of demographic bias in face recognition using fair score normalization",
Pattern Recognition Letters 140, 2020) corrects this without any demographic label:

* templates of a fitting set are clustered (k-means); a cluster is a region of the
  template space, not a group of people anyone named;
* each cluster's threshold at the target FMR is measured on impostor pairs whose two
  templates both fall in that cluster, and the global threshold on all impostor pairs;
  the cluster's *offset* is the difference (clusters with too few templates keep 0);
* a comparison of templates a and b scores `similarity(a, b) - (offset(a) + offset(b)) / 2`.

`normalize` is the one place where that shift is applied: search, compare, the LFW
protocols and the demographic audit all call it (through `Scorer`), so an audit measures
exactly the scores the product reports. With normalization off (`Scorer(None)`), every
offset is 0 and scores are the raw similarities, unchanged.

The parameters (centroids, offsets) are fitted by `benchmarks/fair_normalization.py` and
shipped as `vision/calibration/<template space>.normalization.json`; calibrations
measured on normalized scores are shipped under the score space `<template id>+fsn`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from facegate.errors import ErrorCode, FacegateError
from facegate.vision.calibration import calibration_file_name, similarity, similarity_matrix

FSN_SUFFIX = "+fsn"


def normalize(raw: np.ndarray | float, offset_a: np.ndarray | float, offset_b: np.ndarray | float) -> np.ndarray:
    """The reported score of raw similarities (0..100) between templates with these offsets."""
    shifted = np.asarray(raw, dtype=np.float64) - 0.5 * (np.asarray(offset_a) + np.asarray(offset_b))
    return np.clip(shifted, 0.0, 100.0)


@dataclass(frozen=True, slots=True)
class FairNormalization:
    """Cluster centroids of a template space and each cluster's offset (similarity points)."""

    template_id: str
    centroids: np.ndarray  # (k, d) k-means centres in the template space
    offsets: np.ndarray  # (k,) cluster threshold - global threshold at target_fmr; 0 if too small
    cluster_sizes: np.ndarray  # (k,) fitting templates per cluster
    target_fmr: float
    min_cluster_size: int
    source: str

    def clusters_of(self, templates: np.ndarray) -> np.ndarray:
        """Nearest centroid (Euclidean, as k-means assigns) of each template row."""
        x = np.atleast_2d(np.asarray(templates, dtype=np.float64))
        if len(x) == 0:
            return np.zeros(0, dtype=np.int64)
        centres = self.centroids.astype(np.float64)
        # argmin |x - c|^2 = argmax (x.c - |c|^2 / 2)
        return np.argmax(x @ centres.T - 0.5 * np.sum(centres * centres, axis=1), axis=1)

    def offsets_of(self, templates: np.ndarray) -> np.ndarray:
        return self.offsets[self.clusters_of(templates)]

    def to_dict(self) -> dict[str, object]:
        return {
            "template_id": self.template_id,
            "method": "fair score normalization (Terhoerst et al. 2020), k-means",
            "target_fmr": self.target_fmr,
            "min_cluster_size": self.min_cluster_size,
            "offsets": [round(float(o), 5) for o in self.offsets],
            "cluster_sizes": [int(n) for n in self.cluster_sizes],
            "centroids": [[round(float(v), 6) for v in row] for row in self.centroids],
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict) -> FairNormalization:
        centroids = np.asarray(data["centroids"], dtype=np.float32)
        offsets = np.asarray(data["offsets"], dtype=np.float64)
        if centroids.ndim != 2 or len(centroids) != len(offsets) or not np.all(np.isfinite(offsets)):
            raise FacegateError(ErrorCode.INTERNAL, "malformed score normalization file")
        return cls(
            template_id=str(data["template_id"]),
            centroids=centroids,
            offsets=offsets,
            cluster_sizes=np.asarray(data["cluster_sizes"], dtype=np.int64),
            target_fmr=float(data["target_fmr"]),
            min_cluster_size=int(data["min_cluster_size"]),
            source=str(data["source"]),
        )


def normalization_file_name(template_id: str) -> str:
    return calibration_file_name(template_id).removesuffix(".json") + ".normalization.json"


def load_normalization(template_id: str) -> FairNormalization:
    """The shipped normalization of a template space; none shipped is `UNKNOWN_MODEL`."""
    node = resources.files("facegate.vision").joinpath("calibration", normalization_file_name(template_id))
    try:
        return FairNormalization.from_dict(json.loads(node.read_text()))
    except FileNotFoundError:
        raise FacegateError(
            ErrorCode.UNKNOWN_MODEL,
            f"no score normalization shipped for template space {template_id!r}; "
            "set score_normalization = 'raw'",
        ) from None


@dataclass(frozen=True, slots=True)
class Scorer:
    """How one engine turns two templates into the similarity it reports.

    `normalization=None` is the raw similarity. `score_id` names the scale: calibrations
    (population and per group) are measured, shipped and looked up under it.
    """

    template_id: str
    normalization: FairNormalization | None = None

    @property
    def normalized(self) -> bool:
        return self.normalization is not None

    @property
    def score_id(self) -> str:
        return self.template_id + (FSN_SUFFIX if self.normalized else "")

    @property
    def min_offset(self) -> float:
        return float(self.normalization.offsets.min()) if self.normalization is not None else 0.0

    def offsets(self, templates: np.ndarray) -> np.ndarray:
        """Each template row's offset (zeros when raw)."""
        x = np.atleast_2d(templates)
        if self.normalization is None:
            return np.zeros(len(x))
        return self.normalization.offsets_of(x)

    def pairs(
        self, a: np.ndarray, b: np.ndarray,
        offsets_a: np.ndarray | None = None, offsets_b: np.ndarray | None = None,
    ) -> np.ndarray:
        """Row-wise scores of (n, d) x (n, d) templates; offsets computed when not given."""
        oa = self.offsets(a) if offsets_a is None else offsets_a
        ob = self.offsets(b) if offsets_b is None else offsets_b
        return normalize(similarity(a, b), oa, ob)

    def matrix(
        self, queries: np.ndarray, gallery: np.ndarray,
        offsets_q: np.ndarray | None = None, offsets_g: np.ndarray | None = None,
    ) -> np.ndarray:
        """All-pairs scores (q, g)."""
        oq = self.offsets(queries) if offsets_q is None else offsets_q
        og = self.offsets(gallery) if offsets_g is None else offsets_g
        return normalize(similarity_matrix(queries, gallery), np.asarray(oq)[:, None], np.asarray(og)[None, :])


def scorer_for(template_id: str, mode: str) -> Scorer:
    """`mode` "fair" (normalized, needs the shipped file) or "raw"."""
    if mode == "raw":
        return Scorer(template_id)
    if mode == "fair":
        return Scorer(template_id, load_normalization(template_id))
    raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"unknown score normalization {mode!r} (fair or raw)")
