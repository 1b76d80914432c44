"""Observatory's Python client: record LLM calls and traces, sent in the background.

    from observatory_sdk import Observatory, observe_openai

    observatory = Observatory()  # OBSERVATORY_URL, OBSERVATORY_SECRET_KEY
    client = observe_openai(OpenAI(), observatory, feature="support-chat")
"""

from observatory_sdk._version import __version__
from observatory_sdk.client import Observatory
from observatory_sdk.integrations import observe_anthropic, observe_openai
from observatory_sdk.spans import Span
from observatory_sdk.stats import ClientStats

__all__ = ["ClientStats", "Observatory", "Span", "__version__", "observe_anthropic", "observe_openai"]
