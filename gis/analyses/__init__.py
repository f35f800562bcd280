"""Analyses for city staff: pure functions over data frames (reproducible, testable by hand).

Every output about people is aggregated per district with small cells suppressed
(:mod:`cityos.gis.analyses.suppression`).
"""
