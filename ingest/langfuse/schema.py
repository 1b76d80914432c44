"""The Langfuse public API's ingestion and score shapes, as their SDKs send them.

Field names are camelCase on the wire. Unknown fields are ignored, as Langfuse does, so newer
SDKs that add fields keep working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class Envelope(msgspec.Struct, rename="camel"):
    """One item of POST /api/public/ingestion's batch."""

    id: str
    type: str
    body: dict[str, Any]
    timestamp: datetime | None = None


class TraceBody(msgspec.Struct, rename="camel"):
    id: str | None = None
    timestamp: datetime | None = None
    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    release: str | None = None
    version: str | None = None
    environment: str | None = None
    tags: list[str] | None = None
    metadata: Any = None
    input: Any = None
    output: Any = None
    public: bool | None = None


class Usage(msgspec.Struct, rename="camel"):
    """The legacy `usage` object: Langfuse's own keys or OpenAI's camelCased ones."""

    input: int | None = None
    output: int | None = None
    total: int | None = None
    unit: str | None = None
    input_cost: float | None = None
    output_cost: float | None = None
    total_cost: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class ObservationBody(msgspec.Struct, rename="camel"):
    id: str | None = None
    trace_id: str | None = None
    parent_observation_id: str | None = None
    type: str | None = None
    name: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    completion_start_time: datetime | None = None
    model: str | None = None
    model_parameters: dict[str, Any] | None = None
    input: Any = None
    output: Any = None
    metadata: Any = None
    level: str | None = None
    status_message: str | None = None
    version: str | None = None
    environment: str | None = None
    usage: Usage | None = None
    usage_details: dict[str, Any] | None = None
    cost_details: dict[str, float] | None = None
    prompt_name: str | None = None
    prompt_version: int | str | None = None


class ScoreBody(msgspec.Struct, rename="camel"):
    name: str
    value: float | str
    id: str | None = None
    trace_id: str | None = None
    observation_id: str | None = None
    session_id: str | None = None
    dataset_run_id: str | None = None
    comment: str | None = None
    data_type: str | None = None
    source: str | None = None
    timestamp: datetime | None = None
    environment: str | None = None
    metadata: Any = None

