"""The Settings page: sections shown by capability, and the changes made from it.

Every change is a POST (CSRF-checked by Django's middleware) naming an `action`; each action
checks its own capability, validates a form, calls one audited service and redirects back.
Two answers are rendered instead of redirected, with caching forbidden: a new API key's
secret and a new login's first password exist only in that response and are never stored.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.cache import add_never_cache_headers

from dashboards import forms
from dashboards.pages import Page, project_page
from dashboards.selectors.settings import settings_get
from observatory.pricing.models import PriceOverride
from observatory.pricing.services import price_override_create, price_override_delete
from observatory.tenancy.models import ApiKey, Membership
from observatory.tenancy.roles import Capability, Role
from observatory.tenancy.services import (
    LastAdminError,
    api_key_create,
    api_key_revoke,
    member_add,
    member_remove,
    member_role_change,
    project_add,
    project_settings_update,
)


def _forms(page: Page, bound: dict | None = None) -> dict:
    project = page.project
    initial = {"name": project.name, "time_zone": project.time_zone, "redaction_mode": project.redaction_mode,
               "retention_days": project.retention_days}
    blank = {
        "project_form": forms.ProjectSettingsForm(initial=initial),
        "project_create_form": forms.ProjectCreateForm(),
        "member_form": forms.MemberAddForm(),
        "key_form": forms.ApiKeyCreateForm(),
        "price_form": forms.PriceOverrideForm(),
    }
    return {**blank, **(bound or {})}


def _show(page: Page, *, status: int = 200, bound: dict | None = None, **extra) -> HttpResponse:
    response = page.render("dashboards/settings.html", {
        "data": settings_get(access=page.access), **_forms(page, bound), **extra, "role_choices": Role.choices,
        "can": {name: page.can(capability) for name, capability in (
            ("project", Capability.MANAGE_PROJECT), ("members", Capability.MANAGE_MEMBERS),
            ("keys", Capability.MANAGE_KEYS), ("prices", Capability.MANAGE_PRICES))},
    }, status=status)
    if extra:
        add_never_cache_headers(response)  # a secret shown once must not be kept by any cache
    return response


def _back(page: Page, section: str) -> HttpResponse:
    return redirect(f"{page.url('settings', keep_range=False)}#{section}")


def _require(page: Page, capability: Capability) -> None:
    if not page.can(capability):
        raise PermissionDenied(f"Your role ({page.access.role}) cannot change this.")


def _invalid(page: Page, name: str, form) -> HttpResponse:
    return _show(page, status=400, bound={name: form})


def project_update(page: Page, data) -> HttpResponse:
    _require(page, Capability.MANAGE_PROJECT)
    form = forms.ProjectSettingsForm(data)
    if not form.is_valid():
        return _invalid(page, "project_form", form)
    changes = project_settings_update(project=page.project, actor=page.request.user, **form.cleaned_data)
    messages.success(page.request, f"Saved: {', '.join(changes) or 'nothing changed'}.")
    return _back(page, "project")


def project_new(page: Page, data) -> HttpResponse:
    _require(page, Capability.MANAGE_PROJECT)
    form = forms.ProjectCreateForm(data)
    if form.is_valid():
        try:
            project = project_add(organization=page.project.organization, actor=page.request.user, **form.cleaned_data)
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(page.request, f"Created {project.name}. Create an API key for it below.")
            return redirect(f"{page.url('settings', project=project, keep_range=False)}#keys")
    return _invalid(page, "project_create_form", form)


def member_new(page: Page, data) -> HttpResponse:
    _require(page, Capability.MANAGE_MEMBERS)
    form = forms.MemberAddForm(data)
    if form.is_valid():
        try:
            added = member_add(organization=page.project.organization, actor=page.request.user, **form.cleaned_data)
        except ValueError as error:
            form.add_error("email", str(error))
        else:
            if added.password:
                return _show(page, new_login={"email": added.membership.user.email, "password": added.password})
            messages.success(page.request, f"Added {added.membership.user.email}.")
            return _back(page, "members")
    return _invalid(page, "member_form", form)


def _membership(page: Page, data) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user"), pk=data.get("id"),
                             organization=page.project.organization)


def _member_change(page: Page, data, change: Callable[[Membership], str]) -> HttpResponse:
    """Apply `change` to the membership `data` names; it returns what to tell the user. The
    services refuse to leave the organization without an admin, which is said, not raised."""
    _require(page, Capability.MANAGE_MEMBERS)
    membership = _membership(page, data)
    try:
        messages.success(page.request, change(membership))
    except LastAdminError as error:
        messages.error(page.request, str(error))
    return _back(page, "members")


def member_role(page: Page, data) -> HttpResponse:
    form = forms.MemberRoleForm(data)
    if not form.is_valid():
        _require(page, Capability.MANAGE_MEMBERS)
        return _back(page, "members")
    role = form.cleaned_data["role"]

    def change(membership: Membership) -> str:
        member_role_change(membership=membership, actor=page.request.user, role=role)
        return f"{membership.user.email} is now {role}."

    return _member_change(page, data, change)


def member_delete(page: Page, data) -> HttpResponse:
    def change(membership: Membership) -> str:
        member_remove(membership=membership, actor=page.request.user)
        return f"Removed {membership.user.email}."

    return _member_change(page, data, change)


def key_new(page: Page, data) -> HttpResponse:
    _require(page, Capability.MANAGE_KEYS)
    form = forms.ApiKeyCreateForm(data)
    if not form.is_valid():
        return _invalid(page, "key_form", form)
    issued = api_key_create(project=page.project, name=form.cleaned_data["name"], created_by=page.request.user)
    return _show(page, new_key=issued)


def key_revoke(page: Page, data) -> HttpResponse:
    _require(page, Capability.MANAGE_KEYS)
    key = get_object_or_404(ApiKey.objects.select_related("project__organization"), pk=data.get("id"),
                            project=page.project)
    if api_key_revoke(key=key, actor=page.request.user):
        messages.success(page.request, f"Revoked {key.name}: requests with it are refused from now on.")
    return _back(page, "keys")


def price_new(page: Page, data) -> HttpResponse:
    _require(page, Capability.MANAGE_PRICES)
    form = forms.PriceOverrideForm(data)
    if not form.is_valid():
        return _invalid(page, "price_form", form)
    override = price_override_create(project=page.project, actor=page.request.user, **form.cleaned_data)
    messages.success(page.request, f"Calls to models matching {override.model_pattern} are priced at your rates "
                                   "from now on (calls already stored keep their cost).")
    return _back(page, "prices")


def price_delete(page: Page, data) -> HttpResponse:
    _require(page, Capability.MANAGE_PRICES)
    override = get_object_or_404(PriceOverride.objects.select_related("project__organization"), pk=data.get("id"),
                                 project=page.project)
    price_override_delete(override=override, actor=page.request.user)
    messages.success(page.request, f"Removed the price for {override.model_pattern}.")
    return _back(page, "prices")


ACTIONS: dict[str, Callable[[Page, dict], HttpResponse]] = {
    "project.update": project_update,
    "project.create": project_new,
    "member.add": member_new,
    "member.role": member_role,
    "member.remove": member_delete,
    "key.create": key_new,
    "key.revoke": key_revoke,
    "price.create": price_new,
    "price.delete": price_delete,
}


@project_page("settings")
def settings_page(request: HttpRequest, page: Page) -> HttpResponse:
    if request.method == "POST":
        action = ACTIONS.get(request.POST.get("action", ""))
        if action is None:
            return HttpResponse("Unknown action.", status=400, content_type="text/plain")
        return action(page, request.POST)
    return _show(page)
