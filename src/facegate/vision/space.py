"""The template space: one value for everything that decides what a template means.

Two templates can be compared only if the same embedder made them from chips cut the same
way; a measured error rate (a calibration, a demographic audit) holds only for that, and
an audit's detection failures hold only for the detector that ran. Rather than module
constants read here and there, the engine takes all of it from its pipeline's models as
one `TemplateSpace`: collections are bound to its `template_id`, calibration tables are
looked up by it, and recorded bias audits are keyed on its `audit_id`, which names the
detector too, so that an audit run with one detector never vouches for another.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TemplateSpace:
    model_id: str  # the embedder's network
    dimension: int  # length of its templates
    chip: str  # how chips are cut: size, padding, landmarks
    flip: bool  # the mirror average (part of the template recipe)
    detector: str  # the detector, its fallback and minimum face size

    @property
    def template_id(self) -> str:
        """Model plus template recipe: what collections and calibration tables are keyed on."""
        return f"{self.model_id}{'+flip' if self.flip else ''}"

    @property
    def audit_id(self) -> str:
        """Template space plus detector: what a recorded bias audit vouches for."""
        return f"{self.template_id}@{self.detector}"

    def to_dict(self) -> dict[str, object]:
        return {
            "model_id": self.model_id, "dimension": self.dimension, "chip": self.chip, "flip": self.flip,
            "detector": self.detector, "template_id": self.template_id, "audit_id": self.audit_id,
        }
