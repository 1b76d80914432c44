from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from observatory.tenancy.selectors import projects_for_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The first of the user's projects, or how to get one."""
    project = projects_for_user(user=request.user).first()
    if project is None:
        return render(request, "dashboards/no_projects.html")
    return redirect("pages:overview", slug=project.slug)
