"""ASGI app of the transport service (``uvicorn services.transport.app:app``)."""

from schemas.sectors import Sector
from services.transport.settings import TransportSettings
from services.ingest.app import create_app

app = create_app(Sector.TRANSPORT, TransportSettings)
