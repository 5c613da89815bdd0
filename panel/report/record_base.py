"""The base of every model of the comparison record (:mod:`panel.report.record` and the
modules it is built from): a field the record does not define is an error, not data."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["RecordModel"]


class RecordModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
