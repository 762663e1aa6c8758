"""Templates at rest: sealed with the configured key, plain without one, and refused clearly
when the key does not fit the blob."""

from __future__ import annotations

import os

import numpy as np
import pytest

from facegate.errors import ErrorCode, FacegateError
from facegate.store.crypto import TemplateCodec
from tests.store.conftest import Photo


@pytest.fixture(scope="module")
def template(photos: dict[str, Photo]) -> np.ndarray:
    return photos["obama"].faces[0].template


def refused(code: ErrorCode) -> pytest.RaisesExc[FacegateError]:
    return pytest.raises(FacegateError, check=lambda e: e.code is code)


def test_without_a_key_templates_are_plain_float32(template: np.ndarray) -> None:
    codec = TemplateCodec(None)
    blob = codec.encode(template)
    assert blob == template.astype(np.float32).tobytes() and not codec.encrypted
    np.testing.assert_array_equal(codec.decode(blob), template)


def test_with_a_key_templates_round_trip_and_hide_their_values(template: np.ndarray) -> None:
    codec = TemplateCodec(os.urandom(32))
    first, second = codec.encode(template), codec.encode(template)
    assert first != second  # a fresh nonce each time: equal templates do not look equal
    plain = template.astype(np.float32).tobytes()
    assert plain[:16] not in first and codec.encrypted
    np.testing.assert_array_equal(codec.decode(first), template)
    np.testing.assert_array_equal(codec.decode(second), template)


def test_a_blob_sealed_with_another_key_is_refused(template: np.ndarray) -> None:
    blob = TemplateCodec(os.urandom(32)).encode(template)
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH) as caught:
        TemplateCodec(os.urandom(32)).decode(blob)
    assert "another key" in caught.value.message
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
        TemplateCodec(None).decode(blob)


def test_a_plain_blob_is_refused_once_a_key_is_configured(template: np.ndarray) -> None:
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
        TemplateCodec(os.urandom(32)).decode(TemplateCodec(None).encode(template))


@pytest.mark.parametrize("damage", ["flip_ciphertext", "flip_header", "truncate"])
def test_an_altered_blob_fails_authentication(template: np.ndarray, damage: str) -> None:
    codec = TemplateCodec(os.urandom(32))
    blob = bytearray(codec.encode(template))
    if damage == "flip_ciphertext":
        blob[40] ^= 1
    elif damage == "flip_header":
        blob[14] ^= 1  # inside the nonce, which is authenticated with the header
    else:
        blob = blob[:30]
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
        codec.decode(bytes(blob))


def test_bad_keys_and_bad_vectors_are_refused(template: np.ndarray) -> None:
    with refused(ErrorCode.INVALID_ARGUMENT):
        TemplateCodec(b"short key")
    codec = TemplateCodec(os.urandom(32))
    broken = template.copy()
    broken[3] = np.nan
    with refused(ErrorCode.INVALID_ARGUMENT):
        codec.encode(broken)
    with refused(ErrorCode.INVALID_ARGUMENT):
        codec.encode(np.stack([template, template]))
