"""ASGI app of the transport service (``uvicorn services.transport.app:app``)."""

from schemas.sectors import Sector
from services.ingest.app import create_app
from services.transport.settings import TransportSettings

app = create_app(Sector.TRANSPORT, TransportSettings)
