"""Check raw Rekognition answers against botocore's own service model, strictly.

botocore's parser keeps only the members it knows, so a test of the parsed result cannot
see an extra or misspelt member. `attach` hooks the client's `after-call` event and checks
the raw JSON bytes the server sent: every member is one the model defines for that shape,
every value has the model's type (and an enum's value is one of its values), and every
required member is present; and every answer, errors included, carries the decision
header and a request id. `checked` counts the answers verified, so a test can prove
the hook ran.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.model import Shape, StructureShape

_NUMBERS = {"integer": int, "long": int, "float": (int, float), "double": (int, float), "timestamp": (int, float)}


def problems(shape: Shape, value: Any, where: str = "$") -> list[str]:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            return [f"{where}: expected an object for {shape.name}"]
        found = [f"{where}: {shape.name} lacks required {m}" for m in shape.required_members if m not in value]
        for name, member in value.items():
            if name not in shape.members:
                found.append(f"{where}: {shape.name} has no member {name!r}")
            else:
                found.extend(problems(shape.members[name], member, f"{where}.{name}"))
        return found
    if kind == "list":
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [p for i, item in enumerate(value) for p in problems(shape.member, item, f"{where}[{i}]")]  # type: ignore[attr-defined]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: expected a map"]
        return [p for k, v in value.items() for p in problems(shape.value, v, f"{where}[{k}]")]  # type: ignore[attr-defined]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string"]
        if shape.enum and value not in shape.enum:
            return [f"{where}: {value!r} is not one of {shape.enum}"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean"]
    if kind in _NUMBERS:
        ok = isinstance(value, _NUMBERS[kind]) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected {kind}, got {type(value).__name__}"]
    return [f"{where}: unchecked type {kind}"]


class ModelCheck:
    """Checks every successful answer a client receives; failures are kept, not raised
    inside botocore's event loop (the test asserts on them)."""

    def __init__(self) -> None:
        self.checked: list[str] = []  # successful answers checked against the model
        self.seen: list[int] = []  # the status of every answer
        self.failures: list[str] = []

    def __call__(self, http_response: Any, model: Any, **_: Any) -> None:
        self.seen.append(http_response.status_code)
        for header in ("x-facegate-decision", "x-amzn-requestid"):  # on every answer, errors included
            if header not in http_response.headers:
                self.failures.append(f"{model.name}: no {header} header")
        if http_response.status_code != 200:
            return
        body = json.loads(http_response.content or b"{}")
        found = problems(model.output_shape, body) if model.output_shape is not None else (
            [] if body == {} else [f"{model.name}: answer should be empty"]
        )
        self.failures.extend(f"{model.name} {p}" for p in found)
        self.checked.append(model.name)


def attach(client: Any) -> ModelCheck:
    check = ModelCheck()
    client.meta.events.register("after-call.rekognition", check)
    return check
