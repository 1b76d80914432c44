"""Helpers that wrap the official provider clients. They duck-type the client objects,
so neither the openai nor the anthropic package is imported here."""

from observatory_sdk.integrations.anthropic import observe_anthropic
from observatory_sdk.integrations.openai import observe_openai

__all__ = ["observe_anthropic", "observe_openai"]
