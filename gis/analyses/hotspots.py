"""Accident-risk hotspots: harsh braking of official cars and snowplows against police accidents.

Events are counted on H3 cells (resolution 9, about 0.1 km², edge about 170 m); the cells with
events and their neighbours form the study area. Getis-Ord Gi* (esda) on the harsh-brake counts,
with first-ring H3 neighbours as weights and a permutation test, marks significant hot spots;
"latent" spots are hot spots with at most ``latent_max_accidents`` recorded accidents: places
where drivers brake hard but the police records show (almost) nothing yet.
"""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
from esda.getisord import G_Local
from libpysal.weights import W

HARSH_BRAKE_MS2 = -3.5
RESOLUTION = 9


def harsh_brakes(positions: pd.DataFrame, threshold: float = HARSH_BRAKE_MS2) -> pd.DataFrame:
    """Observations whose longitudinal acceleration is a harsh brake (m/s², negative = braking)."""
    return positions[positions["accel_long"] <= threshold]


def _cells(frame: pd.DataFrame, resolution: int) -> pd.Series:
    return pd.Series([h3.latlng_to_cell(lat, lon, resolution) for lat, lon in zip(frame["lat"], frame["lon"],
                                                                                   strict=True)], dtype=object)


def hotspots(brakes: pd.DataFrame, accidents: pd.DataFrame, *, resolution: int = RESOLUTION,
             permutations: int = 999, alpha: float = 0.05, latent_max_accidents: int = 0,
             seed: int = 12345) -> pd.DataFrame:
    """Per H3 cell: harsh brakes, accidents, Gi* z-score and pseudo p-value, hot, latent.

    ``brakes`` and ``accidents`` have ``lat`` and ``lon`` columns. Reproducible for a ``seed``.
    """
    brake_counts = _cells(brakes, resolution).value_counts() if len(brakes) else pd.Series(dtype=int)
    accident_counts = _cells(accidents, resolution).value_counts() if len(accidents) else pd.Series(dtype=int)
    cells = set(brake_counts.index) | set(accident_counts.index)
    area = set(cells)
    for cell in cells:
        area.update(h3.grid_disk(cell, 1))
    ordered = sorted(area)
    table = pd.DataFrame({"cell": ordered})
    table["harsh_brakes"] = brake_counts.reindex(ordered, fill_value=0).to_numpy()
    table["accidents"] = accident_counts.reindex(ordered, fill_value=0).to_numpy()
    index = set(ordered)
    neighbours = {c: [n for n in h3.grid_disk(c, 1) if n != c and n in index] for c in ordered}
    if len(ordered) < 3 or table["harsh_brakes"].sum() == 0:
        table["gi_z"], table["gi_p"], table["hot"] = 0.0, 1.0, False
    else:
        weights = W(neighbours, silence_warnings=True)
        np.random.seed(seed)
        gi = G_Local(table["harsh_brakes"].astype(float).to_numpy(), weights, transform="B", star=True,
                     permutations=permutations, seed=seed)
        table["gi_z"] = np.round(gi.Zs, 4)
        table["gi_p"] = np.round(gi.p_sim, 4)
        table["hot"] = (gi.Zs > 0) & (gi.p_sim < alpha) & (table["harsh_brakes"] > 0)
    table["latent"] = table["hot"] & (table["accidents"] <= latent_max_accidents)
    lat_lon = [h3.cell_to_latlng(c) for c in ordered]
    table["lat"] = [p[0] for p in lat_lon]
    table["lon"] = [p[1] for p in lat_lon]
    return table.sort_values(["hot", "gi_z"], ascending=[False, False]).reset_index(drop=True)


def cell_polygon(cell: str) -> list[tuple[float, float]]:
    """The cell's boundary as (lon, lat) pairs, closed."""
    ring = [(lon, lat) for lat, lon in h3.cell_to_boundary(cell)]
    return [*ring, ring[0]]
