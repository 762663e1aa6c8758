"""A million face templates distributed like real dlib ones, grown from LFW.

Method (stated so the benchmark numbers can be judged):

1. Real templates: `benchmarks/out/lfw_raw.npz` holds, per LFW photo, the raw dlib
   descriptors of the aligned chip and of its mirror; the facegate template is the unit
   mean `normalise(raw[:, 0] + raw[:, 1])`, the subject is the photo's folder.
2. Within-person spread: the pooled covariance W of (template - its subject's mean) over
   subjects with at least two photos, unbiased (divided by sum of n_s - 1). Real
   residuals are heavier-tailed than a Gaussian (profile shots, blur), so a synthetic
   residual is a N(0, W) draw scaled by a factor drawn from the empirical law of
   |residual| / sqrt(trace W) (rescaled to mean square 1, so its covariance stays W).
3. Between-identity spread: subject means are clumped (sex, age, ethnicity), so they get a
   Gaussian mixture of 8 components with one shared ("tied") covariance. 8 had the best
   BIC on the LFW subject means among 1, 2, 4, 8, 16, 32 components (BIC -3012599,
   -3016639, -3017908, -3021027, -3020746, -3012071); only 8 is fitted per run because
   the sweep takes minutes on 2 shared cores. A mean of n_s templates still carries W/n_s of within-person noise, so the
   identity covariance is the tied covariance minus mean(1/n_s) W, with negative
   eigenvalues clipped to zero; centres are drawn from that de-noised mixture.
4. A synthetic template is normalise(centre + residual); several per identity.

`profile` compares genuine and impostor similarities of real and synthetic sets, including
the best impostor score in a gallery of equal size, so the benchmark can show that the
synthetic million looks like LFW to a nearest-neighbour search, not only on average.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.mixture import GaussianMixture

from facegate.vision.embed import normalise

COMPONENTS = 8  # best BIC on LFW subject means, see module doc


@dataclass(frozen=True, slots=True)
class TemplateModel:
    """Where identities sit (a de-noised tied Gaussian mixture) and how their photos scatter."""

    weights: np.ndarray  # (c,) mixture weights
    component_means: np.ndarray  # (c, d)
    centre_factor: np.ndarray  # (d, d): identity covariance = F F^T
    within_factor: np.ndarray  # (d, d): W = F F^T
    residual_scales: np.ndarray  # (m,) empirical radial law of real residuals

    def identities(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, d) identity centres (not unit length: means of unit templates)."""
        component = rng.choice(len(self.weights), count, p=self.weights)
        spread = rng.standard_normal((count, self.centre_factor.shape[0]), np.float32)
        return self.component_means[component] + spread @ self.centre_factor.T

    def samples(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One unit-length template per centre."""
        noise = rng.standard_normal(centres.shape, np.float32) @ self.within_factor.T
        noise *= rng.choice(self.residual_scales, len(centres))[:, None]
        return normalise(centres + noise)


def lfw_templates(npz: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(templates, subject index per template, subject names) from the raw descriptor file."""
    with np.load(npz) as data:
        raw, names = data["raw"], data["names"]
    keep = np.isfinite(raw).all(axis=(1, 2))
    templates = normalise((raw[keep, 0] + raw[keep, 1]).astype(np.float32))
    folders = np.array([str(name).split("/")[0] for name in names[keep]])
    subjects, labels = np.unique(folders, return_inverse=True)
    return templates, labels, subjects


def _factor(covariance: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(covariance)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))).astype(np.float32)


def fit(templates: np.ndarray, labels: np.ndarray, seed: int = 0) -> TemplateModel:
    """Within- and between-identity spread measured on real templates (see module doc)."""
    counts = np.bincount(labels)
    means = np.zeros((len(counts), templates.shape[1]))
    np.add.at(means, labels, templates)
    means /= counts[:, None]
    repeated = counts[labels] >= 2
    residuals = (templates - means[labels])[repeated]
    within = residuals.T @ residuals / (counts[counts >= 2] - 1).sum()
    unbiased = np.linalg.norm(residuals, axis=1) * np.sqrt(
        counts[labels][repeated] / (counts[labels][repeated] - 1)
    )
    scales = unbiased / np.sqrt(np.trace(within))
    mixture = GaussianMixture(COMPONENTS, covariance_type="tied", reg_covar=1e-6, random_state=seed)
    mixture.fit(means)
    between = mixture.covariances_ - np.mean(1.0 / counts) * within
    return TemplateModel(
        weights=mixture.weights_,
        component_means=mixture.means_.astype(np.float32),
        centre_factor=_factor(between),
        within_factor=_factor(within),
        residual_scales=(scales / np.sqrt(np.mean(scales**2))).astype(np.float32),
    )


def profile(templates: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Similarity statistics that a nearest-neighbour search is sensitive to."""
    order = np.argsort(labels, kind="stable")
    templates, labels = templates[order], labels[order]
    same = np.flatnonzero(labels[1:] == labels[:-1])
    genuine = np.einsum("ij,ij->i", templates[same], templates[same + 1])
    a, b = rng.integers(0, len(labels), (2, 200_000))
    other = labels[a] != labels[b]
    impostor = np.einsum("ij,ij->i", templates[a[other]], templates[b[other]])
    probes = rng.choice(len(labels), min(1000, len(labels)), replace=False)
    scores = templates[probes] @ templates.T
    scores[labels[probes][:, None] == labels[None, :]] = -np.inf
    best_impostor = scores.max(axis=1)
    return {
        "genuine p5": float(np.percentile(genuine, 5)),
        "genuine p50": float(np.median(genuine)),
        "impostor p50": float(np.median(impostor)),
        "impostor p99.9": float(np.percentile(impostor, 99.9)),
        "best impostor p50": float(np.median(best_impostor)),
        "genuine above best impostor p50": float(np.mean(genuine > np.median(best_impostor))),
    }
