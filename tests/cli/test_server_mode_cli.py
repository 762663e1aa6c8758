"""The CLI in server mode: `--database-url` (or FACEGATE_DATABASE_URL) puts every piece of
state in PostgreSQL, so two data directories on one database are one installation, and
nothing but the model cache is written under either; a bad or unreachable URL is a clear
error that never shows the password."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.engine import make_url

from facegate.cli import main
from facegate.settings import Settings

FR = Path("face_recognition") / "tests" / "test_images"


def run(home: Path, url: str, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(home), "--database-url", url, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def second_home(settings: Settings, tmp_path: Path) -> Path:
    """Another host's data directory: its own (shared) model cache and nothing else."""
    home = tmp_path / "other-host"
    home.mkdir()
    (home / "models").symlink_to((settings.home / "models").resolve(), target_is_directory=True)
    return home


def test_two_data_directories_on_one_database_are_one_installation(
    settings: Settings, postgres_url_factory, peers: Path, tmp_path: Path
) -> None:
    url = postgres_url_factory()
    here, there = settings.home, second_home(settings, tmp_path)
    assert run(here, url, "collection", "create", "people")[0] == 0
    code, out = run(here, url, "index", "people", str(peers / FR / "obama.jpg"), "--subject", "obama")
    assert code == 0 and len(out["indexed"]) == 1
    code, out = run(there, url, "search", "people", str(peers / FR / "obama2.jpg"))
    assert code == 0 and [m["subject"] for m in out["matches"]] == ["obama"]
    face_id = out["matches"][0]["face_id"]
    assert run(there, url, "faces", "delete", "people", face_id)[0] == 0
    code, out = run(here, url, "search", "people", str(peers / FR / "obama2.jpg"))
    assert code == 0 and out["matches"] == []
    code, out = run(there, url, "audit", "verify")
    assert code == 0 and out["ok"] is True
    for home in (here, there):
        assert [p.name for p in home.iterdir()] == ["models"]


def test_a_url_that_is_not_postgresql_is_refused_without_echoing_it(settings: Settings) -> None:
    code, out = run(settings.home, "mysql://admin:s3cret@db/facegate", "collection", "list")
    assert code != 0 and out["error"]["code"] == "INVALID_SETTINGS"
    assert "s3cret" not in json.dumps(out)


def test_an_unreachable_server_is_database_unavailable_without_the_password(
    settings: Settings, postgres_admin_url: str
) -> None:
    url = make_url(postgres_admin_url).set(password="s3cret", database="no_such_database")
    code, out = run(settings.home, url.render_as_string(hide_password=False), "collection", "list")
    assert code != 0 and out["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert "s3cret" not in json.dumps(out) and "no_such_database" in out["error"]["message"]


def test_a_password_in_the_url_query_is_never_shown(settings: Settings, postgres_admin_url: str, postgres_url_factory) -> None:
    # libpq takes the password as a query parameter too: `?password=...` (and `sslpassword`)
    unreachable = make_url(postgres_admin_url).set(database="no_such_database").update_query_dict(
        {"password": "s3cret", "sslpassword": "k3ypass"}
    )
    code, out = run(settings.home, unreachable.render_as_string(hide_password=False), "collection", "list")
    assert code != 0 and out["error"]["code"] == "DATABASE_UNAVAILABLE"
    message = out["error"]["message"]
    assert "s3cret" not in message and "k3ypass" not in message
    assert "no_such_database" in message and "password=***" in message
    # a server that lets the role in (trust) without using the password: `db migrate` names the database
    answering = make_url(postgres_url_factory()).update_query_dict({"password": "s3cret"})
    result = CliRunner().invoke(main, ["db", "migrate", "--database-url", answering.render_as_string(hide_password=False)])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output and "password=***" in result.output
