"""Loaders for the city's layers: read real municipal files (and the demo city's), check and
repair what can be repaired, refuse the rest with a report, and store in PostGIS."""
