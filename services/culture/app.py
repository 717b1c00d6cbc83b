"""ASGI app of the culture service (``uvicorn services.culture.app:app``)."""

from schemas.sectors import Sector
from services.culture.settings import CultureSettings
from services.ingest.app import create_app

app = create_app(Sector.CULTURE, CultureSettings)
