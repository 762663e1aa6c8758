"""Human output that reads well: tables with headers, the next page's token, "no faces"
for an empty list, rounded figures with units instead of None and raw JSON."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from facegate.cli import main
from facegate.settings import Settings

FR = Path("face_recognition") / "tests" / "test_images"


def test_lists_have_headers_pages_and_say_when_empty(settings: Settings, peers: Path) -> None:
    home = ["--data-dir", str(settings.home)]
    runner = CliRunner()

    def out(*args: str) -> str:
        done = runner.invoke(main, [*args, *home])
        assert done.exit_code == 0, done.output
        return done.output

    assert out("collection", "list").strip() == "no collections"
    out("collection", "create", "people")
    assert out("faces", "list", "people").strip() == "no faces"
    assert out("subject", "list", "people").strip() == "no subjects"
    for name in ("obama.jpg", "biden.jpg"):
        out("index", "people", str(peers / FR / name), "--subject", name.split(".")[0])
    first = out("faces", "list", "people", "--limit", "1").splitlines()
    assert first[0].split()[:4] == ["face", "id", "subject", "external"] and len(first) == 3
    token = first[-1].removeprefix("next page: --next-token ")
    assert token != first[-1]
    second = out("faces", "list", "people", "--limit", "1", "--next-token", token).splitlines()
    assert len(second) == 2 and second[1].split()[0] != first[1].split()[0]  # the other face, no next page
    subjects = out("subject", "list", "people").splitlines()
    assert subjects[0].split() == ["subject", "faces"] and len(subjects) == 3


def test_records_read_as_fields_with_units(settings: Settings) -> None:
    home = ["--data-dir", str(settings.home)]
    runner = CliRunner()
    check = runner.invoke(main, ["policy", "check", "--operation", "list", *home]).output
    assert "None" not in check and "max_fmr" in check and "not a matching operation" in check
    search = runner.invoke(main, ["policy", "check", "--operation", "search", *home]).output
    assert "similarity" in search and "None" not in search
    runner.invoke(main, ["tenant", "create", "hope-ngo", "--sector", "nonprofit", "--purposes", "research", *home])
    described = runner.invoke(main, ["tenant", "describe", "hope-ngo", *home]).output
    assert not described.lstrip().startswith("{") and described.split()[:2] == ["field", "value"]
    assert "nonprofit" in described
    listed = runner.invoke(main, ["tenant", "list", *home]).output.splitlines()
    assert listed[0].split() == ["tenant", "sector", "status"]
