"""Which image pairs a verification audit compares: mated, matched non-mated, cross-group.

Pure index arithmetic over "image i shows subject s", with a caller-owned seeded
generator so that the same data and seed give the same pairs. Sampling is uniform and
without replacement over the population of eligible pairs, and exhaustive when that
population is no larger than the count asked for: a small group is then measured on
everything it has rather than on repeats.
"""

from __future__ import annotations

import numpy as np


def mated_pairs(subject_of: np.ndarray, cap: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j) of images of the same subject, at most `cap` random ones each."""
    order = np.argsort(subject_of, kind="stable")
    starts = np.flatnonzero(np.r_[True, subject_of[order][1:] != subject_of[order][:-1]])
    ends = np.r_[starts[1:], len(order)]
    left, right = [], []
    for start, end in zip(starts, ends):
        k = end - start
        if k < 2:
            continue
        i, j = np.triu_indices(k, 1)
        if len(i) > cap:
            keep = np.sort(rng.choice(len(i), size=cap, replace=False))
            i, j = i[keep], j[keep]
        members = order[start:end]
        left.append(members[i])
        right.append(members[j])
    if not left:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(left), np.concatenate(right)


def nonmated_pairs(
    images: np.ndarray, subjects: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to `n` pairs of `images` showing different subjects, uniformly without replacement.

    Pairs are drawn as positions in the upper triangle of the images x images matrix; the
    few that fall on one subject are dropped, so the draw is sized up by the share of
    same-subject pairs to leave `n` (it may fall a little short; callers count pairs).
    """
    m = len(images)
    total = m * (m - 1) // 2
    _, sizes = np.unique(subjects, return_counts=True)
    same = int((sizes * (sizes - 1) // 2).sum())
    if total - same <= n:
        i, j = np.triu_indices(m, 1)
    else:
        want = min(total, int(np.ceil(n * 1.05 * total / (total - same))) + 64)
        i, j = triangle_position(rng.choice(total, size=want, replace=False), m)
    differ = subjects[i] != subjects[j]
    return images[i[differ][:n]], images[j[differ][:n]]


def cross_pairs(
    images_a: np.ndarray, images_b: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to `n` pairs (one image of each group), uniformly without replacement."""
    total = len(images_a) * len(images_b)
    picks = np.arange(total) if total <= n else rng.choice(total, size=n, replace=False)
    return images_a[picks // len(images_b)], images_b[picks % len(images_b)]


def triangle_position(k: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (i < j) of the k-th cell of an m x m strict upper triangle, row-major."""
    k = np.asarray(k, dtype=np.int64)
    # rows before i hold i*m - i*(i+1)/2 cells; solve for the largest such i, then fix rounding
    i = np.floor((2 * m - 1 - np.sqrt((2 * m - 1) ** 2 - 8 * k.astype(np.float64))) / 2).astype(np.int64)
    start = i * m - i * (i + 1) // 2
    too_far = start > k
    i[too_far] -= 1
    start = i * m - i * (i + 1) // 2
    past = k - start >= m - 1 - i
    i[past] += 1
    start = i * m - i * (i + 1) // 2
    return i, k - start + i + 1
