"""Budgets: an amount of USD per period for a project or a scope of it, with thresholds to be
told about, who to tell, and whether the guard endpoint should block calls once it is spent."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from observatory.budgets.periods import Period
from observatory.budgets.scopes import ScopeKind
from observatory.calls.models import COST_PLACES
from observatory.metrics.models import SUM_COST_DIGITS
from observatory.notifications.recipients import validate_recipients
from observatory.tenancy.models import Project

DEFAULT_THRESHOLDS = (50, 80, 100)
MIN_THRESHOLD, MAX_THRESHOLD = 1, 1000
MAX_THRESHOLDS = 10
AMOUNT_DIGITS, AMOUNT_PLACES = 14, 2


def default_thresholds() -> list[int]:
    return list(DEFAULT_THRESHOLDS)


def thresholds_clean(values) -> list[int]:
    """Thresholds in percent of the amount, sorted and without repeats, or ValidationError."""
    cleaned: set[int] = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{value!r} is not a whole number of percent.")
        if not MIN_THRESHOLD <= value <= MAX_THRESHOLD:
            raise ValidationError(f"{value}% is outside {MIN_THRESHOLD}..{MAX_THRESHOLD}%.")
        cleaned.add(value)
    if not cleaned:
        raise ValidationError("Give at least one threshold, e.g. 50, 80, 100.")
    if len(cleaned) > MAX_THRESHOLDS:
        raise ValidationError(f"At most {MAX_THRESHOLDS} thresholds.")
    return sorted(cleaned)


def _validate_thresholds(values) -> None:
    thresholds_clean(values)


class Watch(models.Model):
    """What budgets and alert rules share: a name, what they count, who they tell, who made them."""

    # What services may set (Watch.assign); the rest is written by evaluations.
    EDITABLE: ClassVar[tuple[str, ...]] = ("name", "scope", "scope_value", "recipients", "enabled")

    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=16, choices=ScopeKind.choices, default=ScopeKind.PROJECT)
    # The model, provider, feature, environment, user id or tag; empty for the whole project.
    scope_value = models.CharField(max_length=256, blank=True, default="")
    recipients = ArrayField(models.CharField(max_length=2000), default=list, blank=True,
                            validators=[validate_recipients], help_text="Email addresses and webhook URLs.")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def scope_errors(self) -> dict[str, str]:
        """A scope names something, or nothing for the whole project."""
        if self.scope == ScopeKind.PROJECT and self.scope_value:
            return {"scope_value": "Leave scope_value empty when the scope is the whole project."}
        if self.scope != ScopeKind.PROJECT and not self.scope_value.strip():
            return {"scope_value": f"Name the {self.scope} (scope is {self.scope})."}
        return {}

    def clean(self) -> None:
        errors = self.scope_errors()
        if errors:
            raise ValidationError(errors)

    def assign(self, fields: Mapping[str, Any]) -> None:
        """Set the editable fields present in `fields`, validated as they would be stored."""
        for name in self.EDITABLE:
            if name in fields:
                setattr(self, name, fields[name])
        self.full_clean()


class Budget(Watch):
    EDITABLE = (*Watch.EDITABLE, "period", "amount", "thresholds", "hard_cap", "notify_forecast")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="budgets")
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES,
                                 validators=[MinValueValidator(Decimal("0.01"))], help_text="USD per period.")
    thresholds = ArrayField(models.PositiveSmallIntegerField(), default=default_thresholds,
                            validators=[_validate_thresholds], help_text="Percent of the amount.")
    # The guard endpoint answers "blocked" once such a budget is spent.
    hard_cap = models.BooleanField(default=False)
    # One notification per period when the burn rate says the amount will run out before it ends.
    notify_forecast = models.BooleanField(default=True)
    # The last evaluation: spend of the period starting at spent_period_start, as of spent_at.
    # The guard answers from these, so it never queries spend on the request path.
    spent = models.DecimalField(max_digits=SUM_COST_DIGITS, decimal_places=COST_PLACES, null=True, blank=True,
                                editable=False)
    spent_period_start = models.DateTimeField(null=True, blank=True, editable=False)
    spent_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="budget_amount_positive"),
            models.CheckConstraint(
                condition=Q(scope=ScopeKind.PROJECT, scope_value="")
                | (~Q(scope=ScopeKind.PROJECT) & ~Q(scope_value="")),
                name="budget_scope_value_iff_scoped",
                violation_error_message="A scope names something, or nothing for the whole project.",
            ),
        ]
        indexes = [models.Index(fields=["project", "hard_cap"], name="budget_project_idx")]

    def __str__(self) -> str:
        return self.name


class DigestSubscription(models.Model):
    """A member who gets the daily spend digest of a project by email."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="digest_once_per_user")]

    def __str__(self) -> str:
        return f"{self.user} gets the digest of {self.project}"
