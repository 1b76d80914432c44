"""What a notification looks like: an email (plain text and HTML) or a webhook's JSON.

Both come from the notification's context, which the budget, rule or digest that raised it
filled in:

    headline   one line: what happened
    summary    a sentence or two with the numbers
    facts      [[label, value], ...]: the key figures, already formatted
    table      {"title", "columns", "rows"} or null: a small spend table
    link       absolute URL of the dashboard page to look at
    data       machine-readable figures for webhook consumers (decimals as strings)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

TEMPLATE = "notifications/alert"


def email_message_build(*, subject: str, context: dict[str, Any], to: list[str]) -> EmailMultiAlternatives:
    """The one way Observatory builds an email: the same template in text and HTML."""
    values = {**context, "subject": subject, "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{TEMPLATE}.txt", values),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
    )
    message.attach_alternative(render_to_string(f"{TEMPLATE}.html", values), "text/html")
    return message


def webhook_payload_build(*, kind: str, project: str, subject: str, context: dict[str, Any]) -> dict[str, Any]:
    """Slack's incoming-webhook JSON (`text` plus Block Kit `blocks`, which Mattermost and
    Rocket.Chat also read), with the raw figures under `observatory` for anything else."""
    link = context.get("link")
    text = f"*{context.get('headline', subject)}*\n{context.get('summary', '')}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    facts = context.get("facts") or []
    if facts:
        # Slack shows at most 10 fields in a section.
        fields = [{"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in facts[:10]]
        blocks.append({"type": "section", "fields": fields})
    table = context.get("table")
    if table and table.get("rows"):
        lines = [" | ".join(str(cell) for cell in row) for row in table["rows"]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": f"*{table['title']}*\n```" + "\n".join(lines) + "```"}})
    if link:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Open in Observatory>"}]})
    return {
        "text": f"{subject}" + (f" <{link}|Open>" if link else ""),
        "blocks": blocks,
        "observatory": {"kind": kind, "project": project, "subject": subject, "link": link,
                        **(context.get("data") or {})},
    }
