"""Server mode's own store behaviour, on a real PostgreSQL with pgvector (no SQLite twin).

The database is the index: pgvector search answers as the embedded exact index does on real
faces, whether it scans a collection exactly or walks the HNSW graph (which the planner
really uses here, checked on the statement run); a face enrolled or erased through one host
is found or gone through another at once; the searchable copy of a template exists only
where no template key seals it, and a rekey takes it away; and a role that may not create
the extension is told what a database administrator must run.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.store import rekey as rekey_store
from facegate.store.collection_indexes import FaceMatch, VectorStore
from facegate.store.crypto import TemplateCodec
from facegate.store.db import open_engine, read_only_session_factory, server_url, session_factory
from facegate.store.embeddings import literal
from facegate.store.faces import add_faces, delete_faces
from facegate.store.index_sync import IndexSettings
from facegate.store.migrations import migrate
from facegate.store.server_index import ServerIndexSettings, ServerVectors, install
from facegate.store.subjects import erase_subject
from facegate.vision.types import Face
from tests.store.conftest import NOW, Photo, enroll, make_collection

Sessions = sessionmaker[Session]
GALLERY = {  # name -> subject: real faces, several of one person
    "obama": "obama", "biden": "biden", "powell1": "powell", "powell2": "powell",
    "sandler1": "sandler", "pacino1": "pacino", "two_people": None,
}  # fmt: skip
PROBES = ("obama2", "powell3", "sandler2", "pacino2", "biden", "two_people")
REAL = 8  # faces of GALLERY (two in two_people)
NOISE = {"people": 150, "others": 1200}  # random unit templates: enough rows for the planner to walk the graph


@dataclass
class Database:
    url: str
    engine: Engine
    sessions: Sessions

    def rows(self, statement: str, **params: object) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(statement), params)]


@pytest.fixture(params=["postgresql"])
def databases(request: pytest.FixtureRequest, postgres_url_factory: Callable[..., str]) -> Iterator[Callable[[], Database]]:
    """`databases()`: a fresh migrated PostgreSQL database (a host's engine on it)."""
    opened: list[Engine] = []

    def make() -> Database:
        url = postgres_url_factory()
        engine = open_engine(server_url(url))
        migrate(engine)
        opened.append(engine)
        return Database(url, engine, session_factory(engine))

    yield make
    for engine in opened:
        engine.dispose()


def server_vectors(database: Database, kind: str = "auto") -> ServerVectors:
    """The engine's `vectors` in server mode (searches in READ ONLY sessions, DDL in locked ones)."""
    return ServerVectors(database.sessions, read_only_session_factory(database.engine), ServerIndexSettings(kind=kind))


def host(database: Database) -> Database:
    """Another host on the same database: an engine, a pool and sessions of its own."""
    engine = open_engine(server_url(database.url))
    return Database(database.url, engine, session_factory(engine))


def probe(photos: dict[str, Photo], name: str) -> np.ndarray:
    return photos[name].faces[0].template[None, :]


def _noise(sessions: Sessions, template_id: str, collection_id: str, count: int, like: Face, seed: int) -> None:
    vectors = np.random.default_rng(seed).standard_normal((count, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for start in range(0, count, 200):
        with sessions.begin() as session:
            add_faces(
                session, collection_id=collection_id, faces=[replace(like, template=v) for v in vectors[start:start + 200]],
                image_sha256=hashlib.sha256(f"{collection_id}-{start}".encode()).hexdigest(), external_image_id=None,
                subject_id=None, template_id=template_id, codec=TemplateCodec(None), now=NOW,
            )  # fmt: skip


@pytest.fixture(scope="module", params=["postgresql"])
def gallery(postgres_url_factory: Callable[..., str], photos: dict[str, Photo], template_id: str) -> Iterator[Database]:
    """Real faces among random ones in "people", more random ones in "others" (read only)."""
    url = postgres_url_factory()
    engine = open_engine(server_url(url))
    sessions = session_factory(engine)
    codec = TemplateCodec(None)
    make_collection(sessions, template_id)
    make_collection(sessions, template_id, "others")
    for name, subject in GALLERY.items():
        enroll(sessions, photos[name], template_id, codec, subject_id=subject)
    like = photos["obama"].faces[0]
    for seed, (collection_id, count) in enumerate(NOISE.items()):
        _noise(sessions, template_id, collection_id, count, like, seed)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE faces"))  # as autovacuum would: the planner's statistics
    yield Database(url, engine, sessions)
    engine.dispose()


def same(server: list[FaceMatch], embedded: list[FaceMatch]) -> None:
    assert [m.face for m in server] == [m.face for m in embedded]
    assert [m.similarity for m in server] == pytest.approx([m.similarity for m in embedded], abs=1e-5)


@pytest.mark.parametrize(("kind", "walks_the_graph"), [("auto", False), ("exact", False), ("hnsw", True)])
def test_search_in_the_database_answers_as_the_embedded_exact_index(
    gallery: Database, photos: dict[str, Photo], kind: str, walks_the_graph: bool
) -> None:
    ran: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "<=>" in statement:
            ran.append((statement, parameters))

    server = server_vectors(gallery, kind)
    embedded = VectorStore(None, gallery.sessions, TemplateCodec(None), IndexSettings("exact"))
    event.listen(gallery.engine, "before_cursor_execute", keep)
    try:
        probes = np.vstack([probe(photos, n) for n in PROBES] + [photos["two_people"].faces[1].template[None, :]])
        for k in (1, 5, REAL):  # the real faces: well apart from random templates, where HNSW is exact
            found = server.search("people", probes, max_results=k)
            for got, want in zip(found, embedded.search("people", probes, max_results=k), strict=True):
                same(got, want)
                assert {m.face.external_image_id for m in got} <= set(GALLERY)
        [ranked] = embedded.search("people", probe(photos, "powell3"), max_results=REAL)
        cut = (ranked[2].similarity + ranked[3].similarity) / 2  # between the third and the fourth
        for options, expected in (
            ({"min_similarity": cut}, ranked[:3]),
            ({"min_similarity": cut, "exclude_row_ids": [ranked[0].face.row_id]}, ranked[1:3]),
        ):
            [got] = server.search("people", probe(photos, "powell3"), max_results=10, **options)  # type: ignore[arg-type]
            same(got, expected)
    finally:
        event.remove(gallery.engine, "before_cursor_execute", keep)
    [[obama]] = server.search("people", probe(photos, "obama2"), max_results=1)
    assert obama.face.subject == "obama" and obama.face.collection_id == "people"
    statement, parameters = ran[0]
    with gallery.engine.connect() as conn:  # how the database answered that very statement
        conn.exec_driver_sql("SET hnsw.iterative_scan = relaxed_order")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters))  # type: ignore[arg-type]
    assert ("ix_faces_halfvec_hnsw_128" in plan) is walks_the_graph, plan


def test_the_half_precision_graph_picks_and_full_precision_scores_rank(
    gallery: Database, photos: dict[str, Photo]
) -> None:
    """The graph holds halfvec copies; what a search reports and orders by is the cosine of
    the full-precision templates, which the half-precision one would not reproduce."""
    query = probe(photos, "powell3")
    [found] = server_vectors(gallery, "hnsw").search("people", query, max_results=REAL)
    full, half = ({row_id: 1.0 - distance for row_id, distance in gallery.rows(
        f"SELECT row_id, {expression} FROM faces WHERE collection_id = 'people'", probe=literal(query[0]))}
        for expression in ("embedding <=> CAST(:probe AS vector)",
                           "embedding::halfvec(128) <=> CAST(:probe AS halfvec(128))"))
    assert [m.similarity for m in found] == pytest.approx([full[m.face.row_id] for m in found], abs=1e-9)
    assert [m.similarity for m in found] == sorted((m.similarity for m in found), reverse=True)
    assert max(abs(half[m.face.row_id] - full[m.face.row_id]) for m in found) > 1e-5  # the two differ


def test_the_candidate_list_grows_with_the_graph_as_measured() -> None:
    """ef_search 100 reached recall@10 0.995 in 100,000 templates, 300 was needed at a million
    (docs/scaling.md): a small installation keeps its speed, a large one its recall."""
    chosen = ServerIndexSettings()
    assert (chosen.ef_for(100_000), chosen.ef_for(1_000_000)) == (100, 300)
    assert (chosen.m, chosen.ef_construction, chosen.exact_below) == (32, 128, 20_000)


def test_search_refuses_what_it_cannot_answer(gallery: Database, photos: dict[str, Photo]) -> None:
    server = server_vectors(gallery)
    for call, code in (
        (lambda: server.search("people", np.zeros((1, 64), np.float32), max_results=1), ErrorCode.MODEL_MISMATCH),
        (lambda: server.search("people", probe(photos, "obama"), max_results=0), ErrorCode.INVALID_ARGUMENT),
        (lambda: server.search("nobody", probe(photos, "obama"), max_results=1), ErrorCode.COLLECTION_NOT_FOUND),
    ):
        with pytest.raises(FacegateError, check=lambda e, code=code: e.code is code):
            call()


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_what_one_host_enrols_or_erases_another_finds_or_misses_at_once(
    databases: Callable[[], Database], photos: dict[str, Photo], template_id: str, kind: str
) -> None:
    first = databases()
    second = host(first)
    try:
        codec = TemplateCodec(None)
        make_collection(first.sessions, template_id)
        there = server_vectors(second, kind)
        assert there.search("people", probe(photos, "powell3"), max_results=5) == [[]]
        powell = [enroll(first.sessions, photos[n], template_id, codec, subject_id="powell")[0] for n in ("powell1", "powell2")]
        [obama] = enroll(first.sessions, photos["obama"], template_id, codec)
        assert there.refresh("people") == 0  # nothing to catch up: the database is the index
        [found] = there.search("people", probe(photos, "powell3"), max_results=5)
        assert [m.face for m in found] == [*sorted(powell, key=lambda f: f.face_id not in {found[0].face.face_id}), obama]
        with first.sessions.begin() as session:
            delete_faces(session, collection_id="people", face_ids=[obama.face_id])
        [left] = there.search("people", probe(photos, "obama"), max_results=5)
        assert obama.face_id not in {m.face.face_id for m in left} and len(left) == 2
        with first.sessions.begin() as session:
            erase_subject(session, collection_id="people", subject_id="powell")
        assert there.search("people", probe(photos, "powell3"), max_results=5) == [[]]
        assert first.rows("SELECT count(*) FROM faces") == [(0,)]
    finally:
        second.engine.dispose()


def embeddings(database: Database) -> dict[int, str | None]:
    return dict(database.rows("SELECT row_id, embedding::text FROM faces ORDER BY row_id"))


def parsed(value: str) -> np.ndarray:
    return np.array([float(x) for x in value.strip("[]").split(",")], dtype=np.float32)


def test_the_searchable_copy_exists_only_where_no_template_key_seals_the_template(
    databases: Callable[[], Database], photos: dict[str, Photo], template_id: str
) -> None:
    plain, keyed = databases(), databases()
    sealed = TemplateCodec(os.urandom(32))
    for database, codec in ((plain, TemplateCodec(None)), (keyed, sealed)):
        make_collection(database.sessions, template_id)
        for name in ("obama", "two_people"):
            enroll(database.sessions, photos[name], template_id, codec)
    templates = [f.template for n in ("obama", "two_people") for f in photos[n].faces]
    copies = embeddings(plain)
    assert len(copies) == 3
    for copy, template in zip(copies.values(), templates, strict=True):  # exactly the template, float for float
        assert copy is not None
        np.testing.assert_array_equal(parsed(copy), template.astype(np.float32))
    assert list(embeddings(keyed).values()) == [None, None, None]
    blobs = [bytes(b) for (b,) in keyed.rows("SELECT template FROM faces ORDER BY row_id")]
    assert all(sealed.seals(b) for b in blobs)
    assert not any(t.astype(np.float32).tobytes()[:64] in b for t in templates for b in blobs)


def test_a_rekey_takes_the_searchable_copies_away_batch_by_batch(
    databases: Callable[[], Database], photos: dict[str, Photo], template_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half-way (a crash after two batches) a re-sealed template has no plaintext copy left
    and one not yet re-sealed keeps its copy, still searchable; at the end none is left."""
    database = databases()
    plain, sealed = TemplateCodec(None), TemplateCodec(os.urandom(32))
    make_collection(database.sessions, template_id)
    for name in ("obama", "biden", "powell1", "sandler1"):
        enroll(database.sessions, photos[name], template_id, plain)
    assert None not in embeddings(database).values()
    monkeypatch.setattr(rekey_store, "BATCH", 1)

    def crash_after_two(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        rekey_store.reseal_all(database.sessions, plain, sealed, crash_after_two)
    rows = database.rows("SELECT template, embedding IS NULL FROM faces ORDER BY row_id")
    assert [(sealed.seals(bytes(blob)), cleared) for blob, cleared in rows] == [(True, True)] * 2 + [(False, False)] * 2
    assert rekey_store.reseal_all(database.sessions, plain, sealed) == 2
    assert list(embeddings(database).values()) == [None] * 4
    assert server_vectors(database).search("people", probe(photos, "sandler2"), max_results=3) == [[]]
    [[hit, *_]] = VectorStore(None, database.sessions, sealed).search("people", probe(photos, "sandler2"), max_results=3)
    assert hit.face.external_image_id == "sandler1"  # the sealed installation's in-memory index


@pytest.fixture(params=["postgresql"])
def app_role(postgres_admin_url: str, postgres_url_factory: Callable[..., str]) -> Iterator[tuple[str, str, str]]:
    """A login role without superuser rights that owns a new, empty database (no extension):
    (its URL, its name, the database's admin URL). Dropped afterwards."""
    role, password = f"fg_app_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    database_url = postgres_url_factory(migrated=False)
    url = make_url(database_url)
    name = url.database

    def admin(target: str) -> psycopg.Connection:
        return psycopg.connect(make_url(target).set(drivername="postgresql").render_as_string(hide_password=False),
                               autocommit=True)

    with admin(postgres_admin_url) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
            sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(role)))
    try:
        yield url.set(username=role, password=password).render_as_string(hide_password=False), role, database_url
    finally:
        with admin(database_url) as conn:
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with admin(postgres_admin_url) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_role_that_may_not_create_the_extension_is_told_what_an_administrator_must_run(
    app_role: tuple[str, str, str],
) -> None:
    role_url, role, admin_url = app_role
    database = make_url(admin_url).database
    engine = open_engine(server_url(role_url))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar_one() is False
            with pytest.raises(FacegateError) as refused:
                install(conn)
            conn.rollback()
        assert refused.value.code is ErrorCode.DATABASE_EXTENSION_MISSING
        message = refused.value.message
        assert f"role {role} may not create the pgvector extension" in message
        assert "a database administrator must" in message and "`CREATE EXTENSION vector;`" in message
        assert f"in database {database}" in message and "facegate db migrate" in message
        with engine.connect() as conn:  # nothing of the step was applied
            assert conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")).scalar_one() == 0
        admin = open_engine(server_url(admin_url))
        with admin.begin() as conn:  # the administrator does as told...
            conn.execute(text("CREATE EXTENSION vector"))
        admin.dispose()
        migrate(engine)  # ...and the role migrates: its own tables, the embedding column, the HNSW index
        with engine.connect() as conn:
            column = conn.execute(text(
                "SELECT udt_name FROM information_schema.columns WHERE table_name = 'faces' AND column_name = 'embedding'"
            )).scalar_one()
            owner = conn.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'faces'")).scalar_one()
            index = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_faces_halfvec_hnsw_128'")).scalar_one()
        assert (column, owner) == ("vector", role) and "USING hnsw" in index
    finally:
        engine.dispose()
