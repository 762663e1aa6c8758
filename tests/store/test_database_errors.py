"""A database error never carries a statement's values into its message: they may be a
template (biometric data), a key's hash or an audit entry, and the message ends up in the
server's log (an unexpected error is logged with its traceback) or on a terminal."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from facegate.store.crypto import TemplateCodec
from facegate.store.tables import FaceRow
from tests.store.conftest import NOW, Photo, enroll, make_collection


def test_a_failed_insert_of_a_face_does_not_show_its_template(
    sessions: sessionmaker[Session], photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    [stored] = enroll(sessions, photos["obama"], template_id, codec)
    face = photos["obama2"].faces[0]
    template = codec.encode(face.template)
    clash = FaceRow(
        face_id=stored.face_id,  # taken: the insert fails on the unique face id
        collection_id="people", external_image_id="ext-ad-88412.jpg", image_sha256=photos["obama2"].sha256,
        box_left=face.box.left, box_top=face.box.top, box_width=face.box.width, box_height=face.box.height,
        confidence=1.0, landmarks=[list(p) for p in face.landmarks], quality=face.quality.to_dict(),
        template=template, created_at=NOW,
    )
    with pytest.raises(IntegrityError) as failed, sessions.begin() as session:
        session.add(clash)
    message = str(failed.value)
    assert "INSERT INTO faces" in message  # the statement is named ...
    for value in (repr(template[:8])[2:-1], "ext-ad-88412.jpg", photos["obama2"].sha256):
        assert value not in message  # ... its values are not
