"""What names one stage within a cell: its kind, the endpoint it belongs to and, for an
endpoint's scores, whether they are of the endpoint as trained. Labels, record keys and
timing keys are derived from it here alone."""

from __future__ import annotations

from dataclasses import dataclass

from mcbench.vocabulary import STAGES

ENDPOINT, TAMPER, ENDPOINT_EVAL, REPAIR, EVALUATE = STAGES


@dataclass(frozen=True)
class StageId:
    stage: str
    role: str | None = None
    """The endpoint it belongs to, for endpoint, tamper and endpoint-eval stages."""
    untampered: bool = False
    """For endpoint-eval: the scores of the endpoint as trained, before a weight attack."""

    @property
    def endpoint(self) -> str:
        """Its role, for a stage that belongs to an endpoint."""
        assert self.role is not None, f"the {self.stage} stage has no endpoint role"
        return self.role

    @property
    def label(self) -> str:
        """How progress, logs and a record's ``reused`` name it, e.g. "endpoint A"."""
        parts = [self.stage, self.role or "", "untampered" if self.untampered else ""]
        return " ".join(p for p in parts if p)

    @property
    def record_key(self) -> str:
        """Its name among a record's ``keys``, e.g. "endpoint_A"."""
        return self.label.replace(" ", "_")

    @property
    def timing_key(self) -> str:
        """Its compute seconds among a record's ``timings``, e.g. "endpoint_A_s"."""
        return f"{self.record_key}_s"
