"""Local development stack: what `make run` and `make test` start on a laptop.

Nothing here runs in production (docker-compose.yml runs granian, Celery and PostgreSQL
as separate services).
"""
