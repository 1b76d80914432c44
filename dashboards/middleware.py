"""Content-Security-Policy on every response.

Prompt and completion content is attacker-controlled and shown on trace pages. Templates
escape it; this header is the second wall: no inline script, no inline style attribute and
no third-party origin can run even if something slipped through. Pages therefore keep all
JavaScript in static files and pass data through `json_script` (a JSON island the browser
never executes).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # plotly.js draws its modebar icons inline and exports PNGs through data: and blob: URLs.
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
