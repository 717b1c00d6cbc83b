"""The sector ingestion service, shared by education, health, transport and culture.

Each sector package is a thin deployable that builds this app for its own sector.
"""
