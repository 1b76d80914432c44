"""What a span's attributes mean, in each dialect LLM instrumentations speak.

- OpenTelemetry GenAI semantic conventions (gen_ai.*), including the older prompt/completion
  token names and OpenLLMetry/OpenLIT habits (gen_ai.prompt.N.*, gen_ai.usage.cost);
- OpenInference (openinference.span.kind, llm.*, input.value/output.value);
- Langfuse (langfuse.observation.*, langfuse.trace.*, user.id, session.id).

Where dialects overlap, the most specific wins: Langfuse's explicit observation attributes,
then the GenAI conventions, then OpenInference. Token counts are normalised to Observatory's
convention: input_tokens counts cached prompt tokens, output_tokens counts reasoning tokens.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ingest.otlp.attributes import Attributes, parse_json_text
from ingest.signals import METADATA_KEYS, LenientSignals
from ingest.usage import Usage, consistent, usage_from_details
from observatory.calls.models import CallKind
from observatory.calls.records import MAX_ATTEMPT, cost_problem

LANGFUSE_TYPES = {
    "generation": CallKind.GENERATION, "embedding": CallKind.EMBEDDING, "span": CallKind.SPAN,
    "event": CallKind.EVENT, "tool": CallKind.TOOL, "retriever": CallKind.RETRIEVER, "agent": CallKind.AGENT,
    "chain": CallKind.CHAIN, "guardrail": CallKind.GUARDRAIL, "evaluator": CallKind.EVALUATOR,
}
OPENINFERENCE_KINDS = {
    "LLM": CallKind.GENERATION, "EMBEDDING": CallKind.EMBEDDING, "CHAIN": CallKind.CHAIN, "TOOL": CallKind.TOOL,
    "RETRIEVER": CallKind.RETRIEVER, "RERANKER": CallKind.RETRIEVER, "AGENT": CallKind.AGENT,
    "GUARDRAIL": CallKind.GUARDRAIL, "EVALUATOR": CallKind.EVALUATOR,
}
GENAI_OPERATIONS = {
    "chat": CallKind.GENERATION, "text_completion": CallKind.GENERATION, "generate_content": CallKind.GENERATION,
    "embeddings": CallKind.EMBEDDING, "execute_tool": CallKind.TOOL, "invoke_agent": CallKind.AGENT,
    "create_agent": CallKind.AGENT, "retrieval": CallKind.RETRIEVER,
}
MODEL_ATTRIBUTES = ("langfuse.observation.model.name", "gen_ai.response.model", "gen_ai.request.model",
                    "llm.response.model", "llm.model_name")


def kind_of(attrs: Attributes) -> str:
    langfuse = attrs.text("langfuse.observation.type")
    if langfuse and langfuse.lower() in LANGFUSE_TYPES:
        return LANGFUSE_TYPES[langfuse.lower()]
    openinference = attrs.text("openinference.span.kind")
    if openinference and openinference.upper() in OPENINFERENCE_KINDS:
        return OPENINFERENCE_KINDS[openinference.upper()]
    operation = attrs.text("gen_ai.operation.name")
    if operation and operation.lower() in GENAI_OPERATIONS:
        return GENAI_OPERATIONS[operation.lower()]
    if attrs.has(*MODEL_ATTRIBUTES, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"):
        return CallKind.GENERATION
    return CallKind.SPAN


def provider_and_model(attrs: Attributes) -> tuple[str | None, str | None]:
    provider = attrs.text("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
    return provider, attrs.text(*MODEL_ATTRIBUTES)


def usage_of(attrs: Attributes) -> Usage:
    details = attrs.document("langfuse.observation.usage_details")
    if isinstance(details, dict):
        return usage_from_details(details, attrs.warnings)
    usage = Usage(
        input_tokens=attrs.integer("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
        or 0,
        output_tokens=attrs.integer("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                    "llm.token_count.completion") or 0,
        cached_input_tokens=attrs.integer("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                                          "gen_ai.usage.cached_tokens", "gen_ai.usage.input_cached_tokens",
                                          "llm.token_count.prompt_details.cache_read") or 0,
        cache_write_tokens=attrs.integer("gen_ai.usage.cache_creation.input_tokens",
                                         "gen_ai.usage.cache_creation_input_tokens",
                                         "llm.token_count.prompt_details.cache_write") or 0,
        reasoning_tokens=attrs.integer("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
                                       "llm.token_count.completion_details.reasoning") or 0,
        total_tokens=attrs.integer("llm.usage.total_tokens", "gen_ai.usage.total_tokens", "llm.token_count.total"),
    )
    return consistent(usage)


def cost_of(attrs: Attributes) -> Decimal | None:
    total = _sent_cost(attrs)
    if total is not None and (problem := cost_problem(total)):
        attrs.warnings.append(f"cost {problem}; ignored")
        return None
    return total


def _sent_cost(attrs: Attributes) -> Decimal | None:
    details = attrs.document("langfuse.observation.cost_details")
    if isinstance(details, dict) and details:
        if "total" in details:
            return _decimal(details["total"], "cost_details.total", attrs.warnings)
        parts = [_decimal(value, f"cost_details.{key}", attrs.warnings) for key, value in details.items()]
        return sum((part for part in parts if part is not None), Decimal(0)) if any(parts) else None
    total = attrs.values.get("gen_ai.usage.cost", attrs.values.get("llm.cost.total"))
    if total is not None:
        attrs.read.update({"gen_ai.usage.cost", "llm.cost.total"})
        return _decimal(total, "cost", attrs.warnings)
    parts = [attrs.values.get("llm.cost.prompt"), attrs.values.get("llm.cost.completion")]
    if any(part is not None for part in parts):
        attrs.read.update({"llm.cost.prompt", "llm.cost.completion"})
        amounts = [_decimal(part, "llm.cost", attrs.warnings) for part in parts if part is not None]
        return sum((amount for amount in amounts if amount is not None), Decimal(0))
    return None


def _decimal(value: Any, name: str, warnings: list[str]) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        warnings.append(f"{name} is not a number ({value!r}); ignored")
        return None
    if not amount.is_finite() or amount < 0:
        warnings.append(f"{name} is not a non-negative amount ({value!r}); ignored")
        return None
    return amount


def finish_reason_of(attrs: Attributes) -> str | None:
    reasons = attrs.strings("gen_ai.response.finish_reasons", "gen_ai.response.finish_reason", "llm.finish_reason")
    return reasons[0] if reasons else None


def finish_reason_in(completion: Any) -> str | None:
    """The first output message's finish reason (GenAI output messages carry one each), for
    instrumentations that set it there but not in gen_ai.response.finish_reasons."""
    if isinstance(completion, list) and completion and isinstance(completion[0], dict):
        reason = completion[0].get("finish_reason")
        return reason if isinstance(reason, str) else None
    return None


def content_of(attrs: Attributes, events: list[tuple[str, dict[str, Any], int]]) -> tuple[Any, Any]:
    """The prompt and the completion, wherever this instrumentation put them."""
    pairs = (
        ("langfuse.observation.input", "langfuse.observation.output"),
        ("gen_ai.input.messages", "gen_ai.output.messages"),
        ("input.value", "output.value"),
        ("gen_ai.tool.call.arguments", "gen_ai.tool.call.result"),
        ("traceloop.entity.input", "traceloop.entity.output"),
    )
    for input_key, output_key in pairs:
        if attrs.has(input_key, output_key):
            prompt, completion = attrs.document(input_key), attrs.document(output_key)
            if input_key == "gen_ai.input.messages" and attrs.has("gen_ai.system_instructions"):
                prompt = {"system": attrs.document("gen_ai.system_instructions"), "messages": prompt}
            return prompt, completion
    for input_prefix, output_prefix in (("gen_ai.prompt.", "gen_ai.completion."),
                                        ("llm.input_messages.", "llm.output_messages.")):
        prompt, completion = _indexed(attrs.prefixed(input_prefix)), _indexed(attrs.prefixed(output_prefix))
        if prompt or completion:
            return prompt, completion
    return _content_from_events(events)


def _indexed(flat: dict[str, Any]) -> list[dict[str, Any]] | None:
    """{"0.role": "user", "0.content": "hi"} (or "0.message.role") as [{"role": "user", ...}]."""
    if not flat:
        return None
    messages: dict[int, dict[str, Any]] = {}
    for key, value in flat.items():
        index, _, field = key.partition(".")
        if not index.isdigit() or not field:
            continue
        if field.startswith("message."):
            field = field[len("message."):]
        messages.setdefault(int(index), {})[field] = parse_json_text(value)
    return [messages[index] for index in sorted(messages)] or None


def _content_from_events(events: list[tuple[str, dict[str, Any], int]]) -> tuple[Any, Any]:
    """Older GenAI conventions and OpenLIT put messages in span events."""
    prompt, completion = [], []
    for name, values, _ in events:
        if name in ("gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message", "gen_ai.tool.message"):
            prompt.append({"role": name.split(".")[1], **{k: parse_json_text(v) for k, v in values.items()}})
        elif name == "gen_ai.choice":
            completion.append({k: parse_json_text(v) for k, v in values.items()})
        elif name == "gen_ai.content.prompt" and "gen_ai.prompt" in values:
            prompt.append(parse_json_text(values["gen_ai.prompt"]))
        elif name == "gen_ai.content.completion" and "gen_ai.completion" in values:
            completion.append(parse_json_text(values["gen_ai.completion"]))
    return (prompt or None), (completion or None)


# Streaming as instrumentations say it: OpenLLMetry (older, then newer), OpenLIT.
STREAM_ATTRIBUTES = ("gen_ai.request.stream", "llm.is_streaming", "gen_ai.request.is_stream")
PARAMETER_DOCUMENTS = ("langfuse.observation.model.parameters", "llm.invocation_parameters")


def signals_of(attrs: Attributes, *, span_id: str, provider: str | None, model: str | None) -> dict[str, Any]:
    """Caches, retries, fallbacks, limits and filters: the GenAI and HTTP conventions where
    they say it, the observatory.* namespace for what no convention covers."""
    signals = LenientSignals(attrs.warnings)
    signals.max_tokens(*attrs.raw("gen_ai.request.max_tokens", "llm.request.max_tokens"))
    signals.flag("streamed", *attrs.raw(*STREAM_ATTRIBUTES))
    # OpenInference and Langfuse put request parameters in one JSON document instead.
    for key in PARAMETER_DOCUMENTS:
        parameters = attrs.document(key)
        if isinstance(parameters, dict):
            signals.model_parameters(parameters, f"{key} ")
            break
    signals.http_status(*attrs.raw("http.response.status_code", "http.status_code"))
    signals.attempt(*attrs.raw("observatory.attempt"))
    # A resend count of n (HTTP semantic conventions) is the attempt n + 1.
    signals.whole("attempt", *attrs.raw("http.request.resend_count"), low=0, high=MAX_ATTEMPT - 1, plus=1)
    signals.flag("cache_hit", *attrs.raw("observatory.cache.hit"))
    signals.cache_kind(*attrs.raw("observatory.cache.kind"))
    signals.money("cache_saved_cost", *attrs.raw("observatory.cache.saved_cost"))
    signals.retry_of(*attrs.raw("observatory.retry_of"))
    signals.text("fallback_from_provider", *attrs.raw("observatory.fallback.from_provider"))
    signals.text("fallback_from_model", *attrs.raw("observatory.fallback.from_model"))
    signals.millis("timeout_ms", *attrs.raw("observatory.timeout_ms"))
    signals.content_filter(*attrs.raw("observatory.content_filter"))
    # Langfuse SDKs from v3 export over OTLP what older ones sent as metadata keys.
    metadata = attrs.document("langfuse.observation.metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    for key in METADATA_KEYS:
        name = f"langfuse.observation.metadata.{key}"
        if attrs.has(name):
            found, value = attrs.raw(name)
            # Langfuse writes non-string metadata values as JSON text.
            signals.metadata_key(key, found, parse_json_text(value))
        elif metadata.get(key) is not None:
            signals.metadata_key(key, f"langfuse.observation.metadata {key}", metadata[key])
    return signals.checked(span_id=span_id, provider=provider, model=model)
