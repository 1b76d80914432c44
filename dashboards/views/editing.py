"""What the Budgets and Alerts pages share: objects of one project created, edited and
deleted from a form, each write through its service, for roles with one capability.

Every change is a POST (CSRF-checked by Django's middleware) naming an `action`. A role
without the capability gets 403 whatever it posts, even an unknown action; an object of
another project is a 404. Bad input comes back as the form with its errors and a 400.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.forms import ModelForm
from django.http import Http404, HttpResponse
from django.shortcuts import redirect

from dashboards.pages import Page
from observatory.tenancy.roles import Capability

# How a page shows itself: its forms (bound ones replacing blank ones) and a status.
Show = Callable[..., HttpResponse]


@dataclass(frozen=True)
class Editing:
    """One page's kind of object: `create(project=, created_by=, **fields)`,
    `update(<argument>=object, actor=, **fields)` and `delete(<argument>=object, actor=)`,
    each audited with who made the change."""

    page_name: str
    model: type[models.Model]
    form: type[ModelForm]
    capability: Capability
    create: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., Any]
    argument: str
    noun: str  # "budget", "alert rule"

    def object(self, page: Page, pk: Any) -> Any:
        try:
            return self.model.objects.select_related("project").get(pk=int(pk), project=page.project)
        except (TypeError, ValueError, self.model.DoesNotExist):
            raise Http404(f"No such {self.noun} in this project.") from None

    def forbid_unless_allowed(self, page: Page) -> None:
        if not page.can(self.capability):
            raise PermissionDenied(f"Your role ({page.access.role}) cannot change {self.noun}s.")


def _service_errors(form: ModelForm, error: ValidationError) -> None:
    """A service's refusal (e.g. a scope value no call has had) shown on the field it names."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def _back(page: Page, editing: Editing) -> HttpResponse:
    return redirect(page.url(editing.page_name, keep_range=False))


def _create(page: Page, editing: Editing, show: Show) -> HttpResponse:
    form = editing.form(page.request.POST)
    if form.is_valid():
        try:
            created = editing.create(project=page.project, created_by=page.request.user, **form.cleaned_data)
        except ValidationError as error:
            _service_errors(form, error)
        else:
            messages.success(page.request, f"Created the {editing.noun} “{created.name}”.")
            return _back(page, editing)
    return show(page, status=400, create_form=form)


def _update(page: Page, editing: Editing, show: Show) -> HttpResponse:
    pk = page.request.POST.get("id")
    # The form writes its values onto its instance while validating; the service gets a copy
    # as stored, so it can tell what changed (a new scope value is checked, an old one not).
    form = editing.form(page.request.POST, instance=editing.object(page, pk), auto_id="edit_%s")
    if form.is_valid():
        try:
            updated = editing.update(**{editing.argument: editing.object(page, pk)}, actor=page.request.user,
                                     **form.cleaned_data)
        except ValidationError as error:
            _service_errors(form, error)
        else:
            messages.success(page.request, f"Saved the {editing.noun} “{updated.name}”.")
            return _back(page, editing)
    return show(page, status=400, edit_form=form, editing_id=pk)


def _delete(page: Page, editing: Editing, show: Show) -> HttpResponse:
    target = editing.object(page, page.request.POST.get("id"))
    editing.delete(**{editing.argument: target}, actor=page.request.user)
    messages.success(page.request, f"Deleted the {editing.noun} “{target.name}”.")
    return _back(page, editing)


_ACTIONS = {"create": _create, "update": _update, "delete": _delete}


def edit_post(page: Page, editing: Editing, show: Show) -> HttpResponse:
    """Answer a POST to the page: `action` is create, update or delete."""
    editing.forbid_unless_allowed(page)
    action = _ACTIONS.get(page.request.POST.get("action", ""))
    if action is None:
        return HttpResponse("Unknown action.", status=400, content_type="text/plain")
    return action(page, editing, show)


def stored_edit_form(page: Page, editing: Editing) -> ModelForm | None:
    """The form for ?edit=<id>, filled with the stored object; None without one."""
    pk = page.request.GET.get("edit")
    if not pk or not page.can(editing.capability):
        return None
    return editing.form(instance=editing.object(page, pk), auto_id="edit_%s")
