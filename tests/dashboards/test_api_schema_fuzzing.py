"""schemathesis against the published OpenAPI document: every operation, fed inputs generated
from its own schema (valid and not), never answers with a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from observatory.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


# Transactional: schemathesis calls the WSGI application itself, whose request signals close
# the database connection that a test wrapped in a transaction would be using.
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_operation_answers_a_server_error(case, api_key):
    case.call_and_validate(headers={"Authorization": f"Bearer {api_key.secret}"}, checks=[not_a_server_error])
