"""One Rekognition request as the operation mappings see it, and the helpers they share.

A `Call` holds the engine, the verified caller (tenant, key, purpose, case), the region
the request was signed for, and its members (`Params`). Each mapping returns its answer
and the gate's decision (`Answer`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facegate.engine import Facegate
from facegate.gate import Caller, Limits
from facegate.governance import Decision
from facegate.service.aws.params import Params
from facegate.vision.types import QualityFilter

QUALITY = ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH")
MAX_PAGE = 4096


@dataclass(frozen=True, slots=True)
class Call:
    engine: Facegate
    caller: Caller
    region: str
    params: Params

    @property
    def model_version(self) -> str:
        return self.engine.template_id


# The answer's body, and the gate's decision (or, for an answer that is not one, the
# `X-Facegate-Decision` header's content).
Answer = tuple[dict[str, Any], Decision | dict[str, Any]]
Handler = Callable[[Call], Answer]


def quality_filter(value: str | None) -> QualityFilter:
    """AUTO is facegate's default filter (LOW), as Rekognition's AUTO is its own default."""
    return QualityFilter.LOW if value in (None, "AUTO") else QualityFilter(value)


def collection_of(call: Call) -> str:
    return call.params.required_text("CollectionId")


def arn(call: Call, collection_id: str, owner: str | None = None) -> str:
    """The collection's ARN names its owner as the account (the caller, unless the
    collection was shared with it)."""
    return f"arn:aws:rekognition:{call.region}:{owner or call.caller.tenant}:collection/{collection_id}"


def limits_of(call: Call, threshold: str, count: str) -> Limits:
    """The caller's threshold (facegate's 0-100 similarity) and count may only tighten the purpose's."""
    return Limits(threshold=call.params.number(threshold), max_results=call.params.integer(count, 1, MAX_PAGE))


def page_token(call: Call) -> str | None:
    return call.params.text("NextToken")


