"""Contracts of the system: CloudEvents envelope, event data models, KPI registry types, API models.

Everything that crosses a process boundary is defined here once; JSON Schema, OpenAPI and
AsyncAPI documents under ``schemas/generated`` are produced from these models by
``python -m schemas.export`` and never edited by hand.
"""

SCHEMA_MAJOR_VERSION = 1
