"""Reading a policy file: TOML to validated `Policy`, with errors that name line and field.

An officer who mistypes a date should be told "line 14, moratoria[0].end", not shown a
pydantic traceback. TOML syntax errors carry their own line; validation errors carry a
location inside the parsed data, which `_TomlLines` maps back to the line that wrote it
(the key's line, else its table header). The version of a policy is the hash of its
bytes, so the audit log can say exactly which file decided.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.policy import Loc, Policy, PolicyRules

DEFAULT_POLICY_SOURCE = "builtin:default_policy.toml"

_HEADER = re.compile(r"^(\[\[|\[)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_KEY_PART = re.compile(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)""")
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


def _key_parts(dotted: str) -> tuple[str, ...]:
    return tuple(next(g for g in m.groups() if g is not None) for m in _KEY_PART.finditer(dotted))


class _TomlLines:
    """Where each table and key of a TOML text was written (first occurrence wins)."""

    def __init__(self, text: str) -> None:
        self.line_of: dict[Loc, int] = {}
        self.path_at: dict[int, Loc] = {}
        table: Loc = ()
        array_counts: dict[Loc, int] = {}
        in_multiline = False
        for number, line in enumerate(text.splitlines(), start=1):
            quotes = line.count('"""') + line.count("'''")
            if in_multiline:
                in_multiline = quotes % 2 == 0
                continue
            header = _HEADER.match(line.strip())
            if header:
                parts = _key_parts(header.group(2))
                if header.group(1) == "[[":
                    array_counts[parts] = array_counts.get(parts, -1) + 1
                    table = (*parts, array_counts[parts])
                else:
                    table = parts
                self._record(table, number)
                continue
            key = _KEY.match(line)
            if key:
                self._record((*table, *_key_parts(key.group(1))), number)
            in_multiline = quotes % 2 == 1

    def _record(self, path: Loc, number: int) -> None:
        self.line_of.setdefault(path, number)
        self.path_at[number] = path

    def line(self, loc: Loc) -> int | None:
        """The line of the deepest written key on the way to `loc`."""
        for depth in range(len(loc), 0, -1):
            if loc[:depth] in self.line_of:
                return self.line_of[loc[:depth]]
        return None


def field_name(loc: Loc) -> str:
    """("moratoria", 0, "end") -> "moratoria[0].end"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clean_loc(loc: tuple[str | int, ...]) -> Loc:
    """Drop pydantic's union/validator tags (e.g. "list[constrained-str]"), keep data keys."""
    return tuple(p for p in loc if isinstance(p, int) or not ("[" in p or "(" in p))


def _refusal(source: str, problems: list[tuple[int | None, str, str]]) -> FacegateError:
    problems = sorted(set(problems), key=lambda p: (p[0] is None, p[0] or 0, p[1]))
    line, field, message = problems[0]
    where = f"line {line}, " if line is not None else ""
    return FacegateError(
        ErrorCode.POLICY_INVALID,
        f"{source}: {where}{field or 'policy'}: {message}",
        source=source,
        line=line,
        field=field,
        errors=[{"line": ln, "field": f, "message": m} for ln, f, m in problems],
    )


def parse_policy(data: bytes, source: str) -> Policy:
    """Validate policy bytes; refuse with POLICY_INVALID naming the first bad line and field."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data[: exc.start].count(b"\n") + 1
        raise _refusal(source, [(bad_line, "", "the file is not UTF-8 text")]) from None
    lines = _TomlLines(text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.search(str(exc))
        line = int(found.group(1)) if found else None
        field = field_name(lines.path_at[line]) if line in lines.path_at else ""
        message = _TOML_POSITION.sub("", str(exc)).strip()
        raise _refusal(source, [(line, field, f"TOML syntax: {message}")]) from None
    try:
        rules = PolicyRules.model_validate(raw)
    except ValidationError as exc:
        located = [(_clean_loc(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
    else:
        located = rules.reference_errors()
    if located:
        raise _refusal(source, [(lines.line(loc), field_name(loc), msg) for loc, msg in located])
    digest = hashlib.sha256(data).hexdigest()
    return Policy(rules=rules, version=f"sha256:{digest[:16]}", sha256=digest, source=source, text=text)


def load_policy(path: Path) -> Policy:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FacegateError(
            ErrorCode.FILE_NOT_FOUND, f"policy file not found: {path}", path=str(path)
        ) from None
    return parse_policy(data, source=str(path))


def default_policy() -> Policy:
    """The policy shipped in the package: used when no `--policy` / `FACEGATE_POLICY` is given."""
    data = resources.files("facegate.governance").joinpath("default_policy.toml").read_bytes()
    return parse_policy(data, source=DEFAULT_POLICY_SOURCE)
