"""ASGI app of the health service (``uvicorn services.health.app:app``)."""

from schemas.sectors import Sector
from services.health.settings import HealthSettings
from services.ingest.app import create_app

app = create_app(Sector.HEALTH, HealthSettings)
