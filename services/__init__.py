"""Deployable services: one package each, plus the small shared ``runtime``."""
