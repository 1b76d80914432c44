"""Put the msgspec-generated ingest schemas into the OpenAPI document's components."""

from ingest.native.schema import openapi_components


def add_ingest_components(result, generator, request, public):
    _, components = openapi_components()
    result.setdefault("components", {}).setdefault("schemas", {}).update(components)
    return result
