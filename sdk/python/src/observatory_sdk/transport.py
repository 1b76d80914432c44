"""One POST of a batch to /api/v1/events, with the standard library only.

urllib honours the usual HTTP(S)_PROXY / NO_PROXY variables, which self-hosted
deployments behind a corporate proxy rely on. Redirects are not followed: urllib would
turn the POST into a GET and lose the body, so a 3xx is reported for what it is (usually
http:// where the server wants https://).
"""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message

from observatory_sdk._version import __version__

USER_AGENT = f"observatory-sdk-python/{__version__}"
# Level 5 compresses JSON nearly as well as 9 at a fraction of the CPU.
GZIP_LEVEL = 5


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Transport:
    def __init__(self, *, url: str, secret_key: str, timeout: float, compress: bool) -> None:
        self._url = url
        self._timeout = timeout
        self._compress = compress
        self._headers = {
            "Authorization": f"Bearer {secret_key}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        if compress:
            self._headers["Content-Encoding"] = "gzip"
        self._opener = urllib.request.build_opener(_NoRedirects)

    def post(self, body: bytes) -> Reply:
        """The server's reply, whatever its status. Network failures raise OSError
        (urllib.error.URLError is one) or http.client.HTTPException."""
        data = gzip.compress(body, compresslevel=GZIP_LEVEL) if self._compress else body
        request = urllib.request.Request(self._url, data=data, headers=self._headers, method="POST")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            try:
                body = error.read()
            except Exception:  # a reply without a readable body still has a status
                body = b""
            finally:
                error.close()
            return Reply(error.code, error.headers, body)
