"""How the OpenAPI schema (/api/schema/) describes API key authentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "observatory.tenancy.authentication.ApiKeyAuthentication"
    name = ["apiKeyBearer", "apiKeyBasic"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "The project's secret key (sk-obs-…)."},
            {"type": "http", "scheme": "basic",
             "description": "Public key (pk-obs-…) as username, secret key as password (Langfuse SDKs)."},
        ]

    def get_security_requirement(self, auto_schema):
        return [{"apiKeyBearer": []}, {"apiKeyBasic": []}]  # either one, not both
