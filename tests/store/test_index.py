"""The vector indexes: exact and HNSW agree, and both keep the promises of `VectorIndex`.

"Real-ish" data: real dlib templates of LFW photos (embedded here with the real models),
plus synthetic identities drawn with the within- and between-person spread measured on
those same templates, so the gallery has the clustered shape of face templates rather
than the uniform scatter of random vectors.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from facegate.errors import ErrorCode, FacegateError
from facegate.store.index import (
    ExactIndex,
    HnswIndex,
    IndexCorrupt,
    VectorIndex,
    open_index,
)
from facegate.vision import Pipeline
from facegate.vision.embed import normalise

LFW = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "lfw"
SUBJECTS = ("Colin_Powell", "Tony_Blair", "Serena_Williams", "Hugo_Chavez", "Jennifer_Capriati")
PHOTOS_EACH = 4
DIM = 128
KINDS = ("exact", "hnsw")


@pytest.fixture(scope="module")
def lfw_templates() -> tuple[np.ndarray, np.ndarray]:
    """(templates, subject labels) of a few LFW photos per subject, through the real pipeline."""
    if not LFW.is_dir():
        pytest.fail(f"LFW photos missing at {LFW}")
    pipeline = Pipeline()
    templates, labels = [], []
    for label, subject in enumerate(SUBJECTS):
        for photo in sorted((LFW / subject).glob("*.jpg"))[:PHOTOS_EACH]:
            faces = pipeline.analyze_file(photo, max_faces=1)
            templates.append(faces[0].template)
            labels.append(label)
    return np.stack(templates), np.array(labels)


@pytest.fixture(scope="module")
def identities(lfw_templates: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(600, 6, 128): 600 synthetic identities, 6 samples each, spread like the real ones."""
    templates, labels = lfw_templates
    means = np.stack([templates[labels == s].mean(axis=0) for s in range(len(SUBJECTS))])
    within = (templates - means[labels]).std(axis=0) * np.sqrt(PHOTOS_EACH / (PHOTOS_EACH - 1))
    between = means.std(axis=0, ddof=1)
    rng = np.random.default_rng(7)
    centres = means.mean(axis=0) + rng.normal(size=(600, 1, DIM)) * between
    samples = centres + rng.normal(size=(600, 6, DIM)) * within
    return normalise(samples.reshape(-1, DIM)).reshape(600, 6, DIM)


@pytest.fixture(scope="module")
def gallery(identities: np.ndarray) -> np.ndarray:
    """3,000 enrolled templates: the first 5 samples of each synthetic identity."""
    return identities[:, :5].reshape(-1, DIM)


def _filled(kind: str, vectors: np.ndarray, first_key: int = 0) -> VectorIndex:
    index = open_index(kind, DIM)
    index.add(np.arange(first_key, first_key + len(vectors)), vectors)
    return index


def test_exact_and_hnsw_agree_on_real_and_mated_queries(
    lfw_templates: tuple[np.ndarray, np.ndarray], gallery: np.ndarray, identities: np.ndarray
) -> None:
    templates, _ = lfw_templates
    vectors = np.concatenate([gallery, templates])
    exact, hnsw = _filled("exact", vectors), _filled("hnsw", vectors)
    queries = np.concatenate([templates, identities[::4, 5]])  # real photos, unseen 6th samples
    exact_keys, exact_sims = exact.search(queries, 10)
    hnsw_keys, hnsw_sims = hnsw.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_keys, hnsw_keys)])
    assert recall >= 0.99
    same_best = np.isclose(exact_sims[:, 0], hnsw_sims[:, 0], atol=1e-5)
    assert same_best.mean() >= 0.98  # HNSW is approximate: a rare miss, not a habit
    assert np.all(np.diff(exact_sims, axis=1) <= 0) and np.all(np.diff(hnsw_sims, axis=1) <= 0)
    both = exact_keys == hnsw_keys
    np.testing.assert_allclose(exact_sims[both], hnsw_sims[both], atol=1e-5)
    mates = exact_keys[len(templates) :, 0] // 5  # gallery key // 5 is the identity
    assert np.mean(mates == np.arange(0, 600, 4)) >= 0.9


@pytest.mark.parametrize("kind", KINDS)
def test_removed_keys_are_never_returned_even_after_reload(
    kind: str, gallery: np.ndarray, tmp_path: Path
) -> None:
    index = _filled(kind, gallery[:1000])
    gone = np.arange(0, 1000, 3)
    index.remove(np.concatenate([gone, [5_000_000]]))  # an unknown key is ignored
    assert len(index) == 1000 - len(gone)
    assert not np.isin(gone, index.keys()).any()
    keys, _ = index.search(gallery[gone], 50)
    assert not np.isin(keys, gone).any()
    index.save(tmp_path / "i.idx", applied_seq=3)
    loaded, seq = type(index).load(tmp_path / "i.idx", DIM)
    assert seq == 3 and len(loaded) == len(index)
    np.testing.assert_array_equal(loaded.keys(), index.keys())
    keys, _ = loaded.search(gallery[gone], 50)
    assert not np.isin(keys, gone).any()


@pytest.mark.parametrize("kind", KINDS)
def test_removed_templates_leave_the_saved_file(kind: str, gallery: np.ndarray, tmp_path: Path) -> None:
    index = _filled(kind, gallery[:100])
    index.remove(np.array([40, 41]))
    index.save(tmp_path / "i.idx", applied_seq=1)
    saved = (tmp_path / "i.idx").read_bytes()
    assert gallery[40].tobytes() not in saved and gallery[41].tobytes() not in saved
    assert gallery[42].tobytes() in saved


@pytest.mark.parametrize("kind", KINDS)
def test_removed_then_re_added_key_comes_back_after_reload(
    kind: str, gallery: np.ndarray, tmp_path: Path
) -> None:
    index = _filled(kind, gallery[:100])
    index.remove(np.array([5, 6]))
    index.save(tmp_path / "i.idx", applied_seq=1)
    loaded, _ = VectorIndex.load(tmp_path / "i.idx", DIM)
    assert len(loaded) == 98
    loaded.add(np.array([5]), gallery[5:6])
    keys, sims = loaded.search(gallery[5:7], 1)
    assert keys[0, 0] == 5 and sims[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert keys[1, 0] != 6 and len(loaded) == 99


@pytest.mark.parametrize("kind", KINDS)
def test_search_after_removing_almost_everything_pads(kind: str, gallery: np.ndarray) -> None:
    index = _filled(kind, gallery[:300])
    index.remove(np.arange(4, 300))
    keys, sims = index.search(gallery[:3], 10)
    assert {int(k) for k in keys[0, :4]} == {0, 1, 2, 3}
    assert (keys[:, 4:] == -1).all() and np.isneginf(sims[:, 4:]).all()


@pytest.mark.parametrize("kind", KINDS)
def test_re_adding_a_key_replaces_its_vector(kind: str, gallery: np.ndarray) -> None:
    index = _filled(kind, gallery[:500])
    index.add(np.array([7]), gallery[900:901])
    assert len(index) == 500
    keys, sims = index.search(gallery[900:901], 1)
    assert keys[0, 0] == 7 and sims[0, 0] == pytest.approx(1.0, abs=1e-5)
    keys, sims = index.search(gallery[7:8], 1)
    assert sims[0, 0] < 0.999  # the old vector is gone


@pytest.mark.parametrize("kind", KINDS)
def test_fewer_than_k_pads_with_minus_one_and_minus_infinity(kind: str, gallery: np.ndarray) -> None:
    index = _filled(kind, gallery[:3], first_key=10)
    keys, sims = index.search(gallery[:2], 5)
    assert keys.shape == sims.shape == (2, 5)
    assert keys.dtype == np.int64 and sims.dtype == np.float32
    assert sorted(keys[0, :3]) == [10, 11, 12] and keys[0, 0] == 10
    assert (keys[:, 3:] == -1).all() and np.isneginf(sims[:, 3:]).all()


@pytest.mark.parametrize("kind", KINDS)
def test_empty_in_empty_out(kind: str, gallery: np.ndarray) -> None:
    index = open_index(kind, DIM)
    keys, sims = index.search(gallery[:2], 4)
    assert (keys == -1).all() and np.isneginf(sims).all()
    keys, sims = index.search(np.zeros((0, DIM), np.float32), 4)
    assert keys.shape == sims.shape == (0, 4)
    index.add(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32))
    index.remove(np.zeros(0, np.int64))
    assert len(index) == 0 and index.keys().shape == (0,) and index.keys().dtype == np.int64


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_is_refused_with_a_stable_code(kind: str, gallery: np.ndarray) -> None:
    index = _filled(kind, gallery[:10])
    bad_calls = [
        lambda: index.add(np.array([1, 1]), gallery[:2]),  # duplicate key in one call
        lambda: index.add(np.array([-4]), gallery[:1]),  # -1 and below are padding
        lambda: index.add(np.array([1, 2]), gallery[:1]),  # lengths differ
        lambda: index.add(np.array([1]), gallery[:1, :64]),  # wrong dimension
        lambda: index.add(np.array([1]), gallery[:1] * 2),  # not unit length
        lambda: index.add(np.array([1.5]), gallery[:1]),  # float keys
        lambda: index.search(gallery[:1, :100], 3),
        lambda: index.search(np.full((1, DIM), np.nan, np.float32), 3),
        lambda: index.search(gallery[:1], 0),
        lambda: index.save(Path("unused"), applied_seq=-1),
    ]
    for call in bad_calls:
        with pytest.raises(FacegateError) as refused:
            call()
        assert refused.value.code == ErrorCode.INVALID_ARGUMENT
    assert len(index) == 10


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(FacegateError) as refused:
        open_index("annoy", DIM)
    assert refused.value.code == ErrorCode.INVALID_ARGUMENT
    assert isinstance(open_index("exact", DIM), ExactIndex)
    assert isinstance(open_index("hnsw", DIM), HnswIndex)


def _damaged(good: bytes) -> dict[str, bytes]:
    return {
        "truncated payload": good[:-100],
        "truncated header": good[:20],
        "empty": b"",
        "garbage": np.random.default_rng(1).bytes(len(good)),
        "flipped payload byte": good[:500] + bytes([good[500] ^ 1]) + good[501:],
        "flipped applied_seq": good[:32] + bytes([good[32] ^ 1]) + good[33:],
        "trailing bytes": good + b"\0",
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("damage", list(_damaged(bytes(1000))))
def test_damaged_files_raise_index_corrupt(
    kind: str, damage: str, gallery: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "i.idx"
    _filled(kind, gallery[:200]).save(path, applied_seq=9)
    path.write_bytes(_damaged(path.read_bytes())[damage])
    with pytest.raises(IndexCorrupt):
        VectorIndex.load(path, DIM)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_file_other_kind_or_dimension_raise_index_corrupt(
    kind: str, gallery: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "i.idx"
    _filled(kind, gallery[:200]).save(path, applied_seq=9)
    with pytest.raises(IndexCorrupt):
        VectorIndex.load(path, 64)
    other = HnswIndex if kind == "exact" else ExactIndex
    with pytest.raises(IndexCorrupt):
        other.load(path, DIM)
    with pytest.raises(IndexCorrupt):
        VectorIndex.load(tmp_path / "missing.idx", DIM)
    index, seq = VectorIndex.load(path, DIM)
    assert index.kind == kind and seq == 9 and len(index) == 200


@pytest.mark.parametrize("kind", KINDS)
def test_save_replaces_atomically_and_leaves_no_temp_files(
    kind: str, gallery: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "i.idx"
    _filled(kind, gallery[:50]).save(path, applied_seq=1)
    _filled(kind, gallery[:80]).save(path, applied_seq=2)
    assert [p.name for p in tmp_path.iterdir()] == ["i.idx"]
    index, seq = VectorIndex.load(path, DIM)
    assert (len(index), seq) == (80, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_searches_run_while_one_writer_adds(kind: str, gallery: np.ndarray) -> None:
    """Readers overlap the writer for sure, at any speed: they start together (a barrier),
    and the writer stops half-way until every reader has finished a full pass."""
    index = _filled(kind, gallery[:1000])

    writing = threading.Event()
    writing.set()
    start = threading.Barrier(4)
    passed = [threading.Event() for _ in range(3)]

    def search(me: int) -> list[int]:
        lost = []
        start.wait(timeout=60)
        while writing.is_set():
            for row in range(0, 1000, 5):
                keys, _ = index.search(gallery[row : row + 1], 5)
                if keys[0, 0] != row:
                    lost.append(row)
            passed[me].set()
        return lost

    with ThreadPoolExecutor(3) as pool:  # result() re-raises a reader's exception here
        readers = [pool.submit(search, me) for me in range(3)]
        start.wait(timeout=60)
        for start_key in range(1000, 3000, 100):  # the writer re-adds old keys too: replacements
            index.add(np.arange(start_key, start_key + 100), gallery[start_key : start_key + 100])
            index.add(np.arange(start_key - 1000, start_key - 900), gallery[start_key - 1000 : start_key - 900])
            if start_key == 2000:
                assert all(seen.wait(timeout=120) for seen in passed), "a reader never ran beside the writer"
        writing.clear()
        assert [reader.result() for reader in readers] == [[], [], []]
    assert len(index) == 3000
