"""The operators' KPI API and dashboard."""
