"""Docs that cannot drift: every shell and Python example in README.md and docs/*.md runs here.

Conventions for whoever writes docs (the harness reads them as written):

- Fenced blocks tagged ```sh, ```bash or ```python run; every other block (json, toml,
  text, untagged) is shown, not run. docs/cli.md is generated from `--help`
  (tests/test_docs.py keeps it current) and holds no examples.
- The blocks of one file run in order, each in a fresh `bash -euo pipefail` or Python
  process, in one working directory, and share one data directory (FACEGATE_HOME): later
  blocks see what earlier ones made. Files do not see each other's work directories, but
  share the data directory and server, so use names of your own (tenants, collections).
- The working directory looks like the repository: `.venv` (this virtualenv), `src`,
  `examples`, `benchmarks` and `../shared/data` (the real photos) are where the README
  says, so `.venv/bin/facegate ...` and `../shared/data/...` work as written. Files written
  there (`audit.jsonl`, `bias-report/`) are thrown away.
- Stand-ins: the file names examples use for "your photo" exist there as real photos from
  ../shared/data: photo.jpg and probe.jpg (two photos of one person), alice.jpg,
  group.jpg (six people), faces.csv (a manifest: path,subject,external_image_id, with
  group photos in it) and lfw-sample.csv (the LFW manifest's rows, labels included, of
  SAMPLE_PEOPLE, with absolute paths: a bias audit in seconds), footage.mp4 (a 10 s video
  made from LFW photos by tests/video/scenes.py: people enter, move and leave).
- Rekognition stand-ins: `http://facegate.example:8000` is the harness's server too, and
  `"AKFG..."` / `aws_secret_access_key="..."` the AWS credentials of a key of `docs` bound
  to photo_library; the same credentials are in the environment (AWS_ACCESS_KEY_ID, ...)
  for the `aws` CLI. The collection `missing-persons` exists there, owned by `docs`, with
  photo.jpg enrolled as person-17 (the Rekognition guide searches it).
- One `facegate serve` runs for all files on a free loopback port. In examples, `fg_...`
  stands for a real API key of tenant `docs` (nonprofit, every purpose of the default
  policy, roles operator, auditor, admin), and `http://127.0.0.1:8000`,
  `http://localhost:8000` and `localhost:8000` for that server's address. A line that
  starts the server (`.venv/bin/facegate serve ...`) is not run (the harness's server
  stands for it); its options are parsed like those of skipped blocks.
- Every command must succeed (exit 0), every Python block must run without raising.
- A block that truly cannot run here is preceded by the line
  `<!-- docs-test: skip REASON -->`; the reason is required. The facegate command lines
  in a skipped block are still parsed (an unknown command or option fails the test) and
  the scripts it runs must exist. Skipped today (SKIPS_ALLOWED below; a new skip means
  editing it): the install commands (they build the virtualenv this test runs in), the
  full-LFW and benchmark runs (minutes to hours of CPU each; their figures are in
  docs/benchmarks.md and docs/scaling.md), the gate-wiring excerpt of docs/governance.md
  (a slice of gate.py, not a program), the AWS protocol's own test run in docs/rekognition.md (this
  suite runs those tests already), the console's browser tests of docs/console.md (the same,
  and they rewrite its screenshots), the camera/RTSP line of docs/video.md (a device or
  a second machine; the same live path runs on footage.mp4 in the block after it), the
  README's server-mode lines (a PostgreSQL host and a data directory to move; the same
  commands run against a real server in tests/cli and tests/service) and the PostgreSQL
  server of docs/server-mode.md's `db migrate` with a URL and `db copy` (the same).
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from facegate.cli import main
from tests.service.server import Server, running_server

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
DOCS = [REPO / "README.md", *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "cli.md")]
RUN = {"sh", "bash", "python"}
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\s+(?P<reason>\S.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)\s*$")
TIMEOUT = 600
LFW = DATA / "lfw"
PEERS = DATA / "peers"
STAND_INS = {
    "photo.jpg": LFW / "Tony_Blair" / "Tony_Blair_0001.jpg",
    "probe.jpg": LFW / "Tony_Blair" / "Tony_Blair_0002.jpg",
    "alice.jpg": LFW / "Colin_Powell" / "Colin_Powell_0001.jpg",
    "group.jpg": PEERS / "insightface" / "python-package" / "t1.jpg",
}
MANIFEST = [  # faces.csv: one person a row; group photos label the central face only
    (PEERS / "face_recognition" / "tests" / "test_images" / "obama.jpg", "obama", "obama-1"),
    (PEERS / "face_recognition" / "tests" / "test_images" / "biden.jpg", "biden", "biden-1"),
    (PEERS / "deepface" / "couple.jpg", "couple-left", "couple-1"),
    (PEERS / "insightface" / "python-package" / "t1.jpg", "t1-centre", "t1"),
]
SAMPLE_PEOPLE = ("Tony_Blair", "Colin_Powell", "Serena_Williams", "Laura_Bush", "Hugo_Chavez",
                 "Jennifer_Capriati", "Gerhard_Schroeder", "Venus_Williams")
DOCS_TENANT = ("docs", "nonprofit", "victim_identification,missing_person,identity_verification,"
               "account_deduplication,photo_verification,photo_library,research", "operator,auditor,admin")
AWS_STAND_IN_URL = "http://facegate.example:8000"
AWS_COLLECTION = "missing-persons"  # README makes its own missing-2026
SERVER_LINE = re.compile(r"^\s*(\S*/)?facegate\s+serve\b")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence
    lang: str
    text: str
    skip: str | None  # the reason, for a block that cannot run here

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The runnable blocks of a Markdown file, with their skip markers."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        lang = fence["lang"].lower()
        if lang in RUN:
            marker = SKIP.match(lines[i - 1]) if i > 0 else None
            found.append(Block(path, i + 1, lang, "\n".join(lines[i + 1 : end]) + "\n",
                               marker["reason"] if marker else None))
        i = end + 1
    return found


ALL = [b for p in DOCS for b in blocks(p)]
SKIPPED = [b for b in ALL if b.skip]


def command_lines(text: str) -> list[list[str]]:
    """Shell command lines (continuations joined, comments dropped), split into words."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        while words and (re.match(r"^[A-Z_]+=", words[0]) or words[0] == "taskset"):
            words = words[3:] if words[0] == "taskset" else words[1:]  # FOO=bar / taskset -c 0
        if words:
            out.append(words)
    return out


def parse_facegate(words: list[str]) -> None:
    """Resolve a facegate command line to its command and parse its options, running nothing."""
    command: click.Command = main
    ctx = command.make_context("facegate", list(words[1:]))
    while isinstance(command, click.Group):
        name, sub, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert sub is not None, f"unknown command in {' '.join(words)}"
        command, ctx = sub, sub.make_context(name or "", rest, parent=ctx)


def check_without_running(block: Block) -> None:
    """What a skipped block can still be held to: its commands exist, its options parse."""
    for words in command_lines(block.text) if block.lang != "python" else []:
        if words[0].endswith("facegate"):
            parse_facegate(words)
        scripts = [w for w in words if w.endswith(".py")]
        for script in scripts:
            assert (REPO / script).is_file(), f"{block.where}: no script {script}"


# Skipped blocks by file: adding a skip means changing this inventory, on purpose.
SKIPS_ALLOWED = {
    "README.md": 4,  # the two install commands, the full-LFW measurement runs, server mode (a PostgreSQL host)
    "docs/benchmarks.md": 18,  # every benchmark command (each minutes to hours of CPU)
    "docs/console.md": 1,  # the browser test suite (already part of this suite; rewrites screenshots)
    "docs/governance.md": 1,  # the gate-wiring excerpt of gate.py
    "docs/rekognition.md": 1,  # the AWS protocol's test suite (already part of this suite)
    "docs/scaling.md": 1,  # the server-mode benchmark runs behind its figures (minutes to an hour each)
    "docs/server-mode.md": 2,  # a PostgreSQL server (tests/store and tests/cli run the same against a real one)
    "docs/video.md": 1,  # a camera or RTSP stream
}


def test_every_skip_says_why_and_skips_stay_few() -> None:
    assert all(b.skip and len(b.skip) > 10 for b in SKIPPED)
    by_file: dict[str, int] = {}
    for block in SKIPPED:
        name = str(block.path.relative_to(REPO))
        by_file[name] = by_file.get(name, 0) + 1
    assert by_file == SKIPS_ALLOWED, [b.where for b in SKIPPED]
    for block in SKIPPED:
        check_without_running(block)


@dataclass(frozen=True)
class DocsWorld:
    server: Server
    aws: dict[str, str]  # access key id and secret of docs' purpose-bound key
    footage: Path


@pytest.fixture(scope="module")
def docs_world(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[DocsWorld]:
    from tests.video.scenes import SCENE, SCENE_SECONDS, SCENE_SIZE, render

    home = tmp_path_factory.mktemp("docs-home")
    footage = render(tmp_path_factory.mktemp("docs-video") / "footage.mp4", SCENE, SCENE_SECONDS, SCENE_SIZE)
    with running_server(home, model_cache, tenants=(DOCS_TENANT,),
                        settings={"FACEGATE_RATE_LIMIT_PER_MINUTE": "0"}) as server:
        made = server.cli("key", "create", "docs", "--purpose", "photo_library", "--holder", "docs examples")
        aws = {"id": str(made["aws_access_key_id"]), "secret": str(made["aws_secret_access_key"])}
        with server.client(server.keys["docs"]) as fg:
            fg.create_collection(AWS_COLLECTION)
            fg.index_faces(AWS_COLLECTION, STAND_INS["photo.jpg"], subject="person-17", purpose="photo_library")
        yield DocsWorld(server, aws, footage)


def workdir(root: Path, footage: Path) -> Path:
    """A directory laid out like the repository, beside a `shared` link to the real data."""
    (root / "shared").symlink_to(REPO.parent / "shared", target_is_directory=True)
    work = root / "repo"
    work.mkdir()
    for name in (".venv", "src", "examples", "benchmarks", "docs", "weights.txt", "pyproject.toml"):
        if (REPO / name).exists():
            (work / name).symlink_to(REPO / name)
    for name, photo in STAND_INS.items():
        (work / name).symlink_to(photo)
    (work / "footage.mp4").symlink_to(footage)
    with (work / "faces.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject", "external_image_id"])
        writer.writerows([(str(p), s, e) for p, s, e in MANIFEST])
    with (LFW / "manifest.csv").open(newline="") as source, (work / "lfw-sample.csv").open("w", newline="") as out:
        reader = csv.DictReader(source)
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        taken: dict[str, int] = {}
        for row in reader:
            if row["subject"] in SAMPLE_PEOPLE and taken.get(row["subject"], 0) < 4:
                taken[row["subject"]] = taken.get(row["subject"], 0) + 1
                writer.writerow({**row, "path": str(LFW / row["path"])})
    return work


def substitute(text: str, world: DocsWorld) -> str:
    server = world.server
    text = text.replace("fg_...", server.keys["docs"]).replace(AWS_STAND_IN_URL, server.url)
    text = text.replace('"AKFG..."', f'"{world.aws["id"]}"')
    text = text.replace('aws_secret_access_key="..."', f'aws_secret_access_key="{world.aws["secret"]}"')
    for address in ("http://127.0.0.1:8000", "http://localhost:8000"):
        text = text.replace(address, server.url)
    return text.replace("localhost:8000", server.url.removeprefix("http://"))


def run_block(block: Block, work: Path, world: DocsWorld) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACEGATE_", "AWS_"))}
    env.update(FACEGATE_HOME=str(world.server.home), PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}")
    env.update(AWS_ACCESS_KEY_ID=world.aws["id"], AWS_SECRET_ACCESS_KEY=world.aws["secret"],
               AWS_DEFAULT_REGION="eu-west-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true")
    text = substitute(block.text, world)
    if block.lang == "python":
        argv = [sys.executable, "-c", text]
    else:
        kept = []
        for line in re.sub(r"\\\n", " ", text).splitlines():
            if SERVER_LINE.match(line):
                parse_facegate(command_lines(line)[0])  # the harness's server stands for it
            else:
                kept.append(line)
        argv = ["bash", "-euo", "pipefail", "-c", "\n".join(kept)]
    done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, (
        f"{block.where}: example failed ({done.returncode})\n--- block\n{block.text}--- stdout\n"
        f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(REPO)) for p in DOCS])
def test_examples_run(doc: Path, docs_world: DocsWorld, tmp_path: Path) -> None:
    work = workdir(tmp_path, docs_world.footage)
    for block in blocks(doc):
        if block.skip:
            check_without_running(block)
        else:
            run_block(block, work, docs_world)


def test_thresholds_in_vision_md_are_the_shipped_calibration() -> None:
    """The figures docs/vision.md quotes are read back from the calibration the package ships."""
    from facegate.engine import Facegate
    from facegate.settings import Settings
    from facegate.vision.calibration import load_calibration

    text = (REPO / "docs" / "vision.md").read_text(encoding="utf-8")
    quoted = {float(f): float(t) for f, t in re.findall(r"(1e-\d+) → (\d+\.\d+)", text)}
    default = re.search(r"the similarity at FMR 1e-3, \*\*(\d+\.\d+)\*\*", text)
    assert len(quoted) >= 4 and default is not None
    calibration = load_calibration(Facegate(Settings()).template_id)
    assert {f: round(calibration.threshold_at_fmr(f), 2) for f in quoted} == quoted
    assert round(calibration.default_threshold, 2) == float(default[1])
