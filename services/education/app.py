"""ASGI app of the education service (``uvicorn services.education.app:app``)."""

from schemas.sectors import Sector
from services.education.settings import EducationSettings
from services.ingest.app import create_app

app = create_app(Sector.EDUCATION, EducationSettings)
