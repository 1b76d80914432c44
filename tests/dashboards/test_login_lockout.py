"""Failed logins lock an email out from one address for a while; API keys are never affected."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD

ATTACKER = "203.0.113.7"
OWNER_ELSEWHERE = "198.51.100.20"


def try_login(email: str, password: str, *, address: str = ATTACKER, **headers: str):
    return Client(REMOTE_ADDR=address).post("/login/", {"username": email, "password": password}, headers=headers)


def fail_until_locked(email: str, **kwargs) -> None:
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        response = try_login(email, f"wrong-{attempt}", **kwargs)
        assert response.status_code in (200, 429), response.status_code


def lockout_expired() -> None:
    """Move every counted failure back past the cool-off, as the clock would."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))


@pytest.mark.django_db
def test_wrong_passwords_below_the_limit_only_say_they_did_not_match(owner):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        response = try_login(owner.email, f"wrong-{attempt}")
        assert response.status_code == 200 and b"didn't match" in response.content
    assert try_login(owner.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_repeated_failures_lock_the_email_out_with_a_clear_message_even_for_the_right_password(owner):
    fail_until_locked(owner.email)
    response = try_login(owner.email, PASSWORD)
    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many failed logins" in body and f"{settings.AXES_COOLOFF_TIME.seconds // 60} minutes" in body
    assert 0 < int(response["Retry-After"]) <= settings.AXES_COOLOFF_TIME.total_seconds()
    assert '<form method="post" action="/login/">' in body  # still the login page
    assert "_auth_user_id" not in Client(REMOTE_ADDR=ATTACKER).session


@pytest.mark.django_db
def test_the_lockout_ends_after_the_cool_off_and_the_right_password_works_again(owner):
    fail_until_locked(owner.email)
    assert try_login(owner.email, PASSWORD).status_code == 429
    lockout_expired()
    assert try_login(owner.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_attempts_while_locked_out_do_not_extend_the_lockout(owner):
    fail_until_locked(owner.email)
    counted = list(AccessAttempt.objects.values_list("attempt_time", "failures_since_start"))
    for attempt in range(3):
        assert try_login(owner.email, f"guess-while-locked-{attempt}").status_code == 429
    assert list(AccessAttempt.objects.values_list("attempt_time", "failures_since_start")) == counted


@pytest.mark.django_db
def test_a_success_resets_the_count(owner):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        try_login(owner.email, f"wrong-{attempt}")
    assert try_login(owner.email, PASSWORD).status_code == 302
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert try_login(owner.email, f"wrong-again-{attempt}").status_code == 200
    assert try_login(owner.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_the_owner_still_logs_in_from_another_address(owner):
    fail_until_locked(owner.email)
    assert try_login(owner.email, PASSWORD, address=OWNER_ELSEWHERE).status_code == 302


@pytest.mark.django_db
def test_changing_the_case_of_the_email_does_not_buy_more_guesses(owner):
    spellings = [owner.email.upper(), owner.email.title(), f"  {owner.email}  ", owner.email, owner.email.swapcase()]
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        try_login(spellings[attempt % len(spellings)], f"wrong-{attempt}")
    assert try_login(owner.email, PASSWORD).status_code == 429


@pytest.mark.django_db
def test_a_forged_forwarded_for_header_does_not_buy_more_guesses(owner):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        try_login(owner.email, f"wrong-{attempt}", **{"X-Forwarded-For": f"192.0.2.{attempt + 1}"})
    assert try_login(owner.email, PASSWORD, **{"X-Forwarded-For": "192.0.2.200"}).status_code == 429


@pytest.mark.django_db
def test_behind_a_proxy_the_address_the_proxy_added_is_the_one_counted(owner, settings):
    settings.BEHIND_PROXY = True
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        # The client forges the first entry; the proxy appends the real address last.
        try_login(owner.email, f"wrong-{attempt}", address="10.0.0.2",
                  **{"X-Forwarded-For": f"192.0.2.{attempt + 1}, {ATTACKER}"})
    assert try_login(owner.email, PASSWORD, address="10.0.0.2", **{"X-Forwarded-For": ATTACKER}).status_code == 429
    # Someone else behind the same proxy is not locked out.
    assert try_login(owner.email, PASSWORD, address="10.0.0.2",
                     **{"X-Forwarded-For": OWNER_ELSEWHERE}).status_code == 302


@pytest.mark.django_db
def test_the_admin_login_counts_and_obeys_the_same_lockout(owner):
    owner.is_staff = True
    owner.save()
    admin = Client(REMOTE_ADDR=ATTACKER)
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        admin.post("/admin/login/", {"username": owner.email, "password": f"wrong-{attempt}"})
    response = admin.post("/admin/login/", {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 429 and b"Too many failed logins" in response.content


@pytest.mark.django_db
def test_api_keys_work_while_the_login_is_locked_out_and_bad_keys_lock_out_nobody(owner, project, api_key):
    fail_until_locked(owner.email)
    api = Client(REMOTE_ADDR=ATTACKER)
    calls = api.get(f"/api/v1/calls?project={project.slug}", headers={"Authorization": f"Bearer {api_key.secret}"})
    assert calls.status_code == 200
    event = {"id": "lockout-1", "start_time": timezone.now().isoformat(), "model": "gpt-4o-mini"}
    ingested = api.post("/api/v1/events", event, content_type="application/json",
                        headers={"Authorization": f"Bearer {api_key.secret}"})
    assert ingested.status_code == 200, ingested.content
    lockout_expired()
    AccessAttempt.objects.all().delete()
    for attempt in range(settings.AXES_FAILURE_LIMIT * 2):
        refused = api.get("/api/v1/calls", headers={"Authorization": f"Bearer sk-obs-not-a-key-{attempt}"})
        assert refused.status_code == 401
    assert not AccessAttempt.objects.exists()
    assert try_login(owner.email, PASSWORD).status_code == 302
