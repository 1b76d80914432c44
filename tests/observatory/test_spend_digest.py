"""The daily spend digest: once per project and local day, to subscribed members who may see costs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from observatory.budgets.digest import digest_subscribe, spend_digest_send, spend_digests_send
from observatory.budgets.services import budget_create
from observatory.notifications.models import NotificationKind
from observatory.tenancy.models import Membership, Project
from tests.alerting import spend

pytestmark = pytest.mark.django_db


@pytest.fixture
def paris(project):
    Project.objects.filter(pk=project.pk).update(time_zone="Europe/Paris")
    return Project.objects.get(pk=project.pk)


def test_the_digest_of_yesterday_goes_to_subscribers_once_after_the_digest_hour(paris, finance, owner, settings):
    settings.SPEND_DIGEST_HOUR = 7
    digest_subscribe(project=paris, user=finance, subscribed=True)
    # 19 Nov in Paris: 18 Nov 23:00 UTC to 19 Nov 23:00 UTC.
    spend(paris, "2.50", datetime(2026, 11, 18, 23, 30, tzinfo=UTC), model="gpt-4o")
    spend(paris, "1.25", datetime(2026, 11, 19, 22, 30, tzinfo=UTC), model="gpt-4o-mini")
    spend(paris, "9.00", datetime(2026, 11, 19, 23, 30, tzinfo=UTC))  # the 20th: not in the digest
    budget_create(project=paris, name="Monthly", amount=Decimal("100.00"))

    assert spend_digest_send(project=paris, now=datetime(2026, 11, 20, 5, 59, tzinfo=UTC)) is None  # 06:59 local
    digest = spend_digest_send(project=paris, now=datetime(2026, 11, 20, 6, 0, tzinfo=UTC))
    assert digest.kind == NotificationKind.SPEND_DIGEST and digest.key == "digest:2026-11-19"
    assert digest.subject == "[support-bot] Spend on Thu 19 Nov 2026: $3.75"
    assert list(digest.deliveries.values_list("recipient", flat=True)) == ["finance@acme.test"]
    assert digest.context["table"]["rows"] == [["gpt-4o", "1", "$2.50"], ["gpt-4o-mini", "1", "$1.25"]]
    facts = dict(digest.context["facts"])
    assert facts["November 2026 so far"] == "$12.75"
    assert facts['Budget "Monthly"'].startswith("$12.75 of $100.00 (12.8%)")
    assert spend_digests_send(now=datetime(2026, 11, 20, 9, tzinfo=UTC)) == 0  # already sent today


def test_no_digest_without_subscribers_who_may_see_costs(paris, finance):
    digest_subscribe(project=paris, user=finance, subscribed=True)
    Membership.objects.filter(user=finance).delete()  # left the organization
    assert spend_digest_send(project=paris, now=datetime(2026, 11, 20, 9, tzinfo=UTC)) is None
    assert spend_digests_send(now=datetime(2026, 11, 20, 9, tzinfo=UTC) + timedelta(hours=1)) == 0
