"""What a budget or alert rule counts: the whole project, or calls with one model, provider,
feature, environment, end user or tag.

Every scope but `tag` is a dimension of the metrics rollups and is read from them; tags are
not (a call has any number), so a tag scope reads raw calls (see selectors.scope_spend).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.db import models


class ScopeKind(models.TextChoices):
    PROJECT = "project", "Whole project"
    MODEL = "model"
    PROVIDER = "provider"
    FEATURE = "feature"
    ENVIRONMENT = "environment"
    USER = "user", "End user"
    TAG = "tag"


# Scope kind -> the metrics engine's dimension (selectors.GROUPABLE).
SCOPE_DIMENSIONS: dict[str, str] = {
    ScopeKind.MODEL: "model",
    ScopeKind.PROVIDER: "provider",
    ScopeKind.FEATURE: "feature",
    ScopeKind.ENVIRONMENT: "environment",
    ScopeKind.USER: "user_id",
}


def scope_filters(*, scope: str, value: str) -> dict[str, list[str]]:
    """`metrics_query` filters for a rollup scope (empty for the whole project)."""
    if scope == ScopeKind.PROJECT:
        return {}
    if scope not in SCOPE_DIMENSIONS:
        raise ValueError(f"{scope} is not a rollup dimension")
    return {SCOPE_DIMENSIONS[scope]: [value]}


def scope_matches(*, scope: str, value: str, attributes: Mapping[str, str | Sequence[str]]) -> bool:
    """Whether a call with `attributes` (model, provider, feature, environment, user, tags)
    is counted by the scope. An attribute the caller did not give matches no scope on it."""
    if scope == ScopeKind.PROJECT:
        return True
    if scope == ScopeKind.TAG:
        return value in (attributes.get("tags") or ())
    return attributes.get(scope) == value


def scope_label(*, scope: str, value: str) -> str:
    return "the whole project" if scope == ScopeKind.PROJECT else f"{ScopeKind(scope).label.lower()} {value}"
