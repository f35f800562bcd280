"""Column synonyms: the one table that maps the names real files use to cityos's names.

Extend it by adding a name to a tuple (or a new entry). Names are compared after NFKC, without
spaces, case-insensitively, with full-width brackets folded; an RDF property URI such as
``http://www.w3.org/2003/01/geo/wgs84_pos#lat`` is matched by its last path segment
(``wgs84_pos#lat``). Known misspellings are listed with the standard name they stand for, and a
file that uses one is reported.
"""

from __future__ import annotations

import unicodedata

#: cityos field -> names seen in real files (standard 自治体標準オープンデータセット names first).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "id": ("ID", "NO", "番号", "管理番号", "subject", "stop_id"),
    "name": ("名称", "title", "施設名", "stop_name", "name"),
    "kind": ("種別", "種類", "type", "施設種別", "水利種別"),
    "latitude": ("緯度", "緯度(世界測地系)", "latitude", "lat", "wgs84_pos#lat", "stop_lat", "y座標(緯度)"),
    "longitude": ("経度", "経度(世界測地系)", "longitude", "lng", "lon", "long", "wgs84_pos#long", "stop_lon",
                  "x座標(経度)"),
    "location": ("位置", "location", "緯度経度", "latlng"),
    "address": ("所在地_連結表記", "住所", "所在地", "address", "所在地_連結標記"),
    "building": ("建物名等(方書)", "方書"),
    "diameter": ("口径",),
    "note": ("備考", "note", "bikou", "メモ"),
    "date": ("date", "update", "更新日", "登録日", "設置年月日", "調査年月日", "年月日"),
    "lg_code": ("全国地方公共団体コード", "都道府県コード又は市区町村コード", "地方公共団体コード", "municipality"),
    "lg_name": ("地方公共団体名", "市区町村名"),
    "area_code": ("町字ID", "地域コード", "町丁目コード", "地区コード"),
    "area_name": ("地域名", "町丁目名", "町字名", "町名", "地区名"),
    "total": ("総人口", "総数", "人口総数", "人口", "合計"),
    "male": ("男性", "男", "男性人口"),
    "female": ("女性", "女", "女性人口"),
    "households": ("世帯数",),
}
#: Misspellings seen in real files -> the standard name they stand for.
MISSPELLINGS: dict[str, str] = {"所在地_連結標記": "所在地_連結表記"}
#: Values of 種別 seen in real files -> the standard value.
KIND_VALUES: dict[str, str] = {"syoukasen": "消火栓", "shoukasen": "消火栓", "hydrant": "消火栓",
                               "fire_hydrant": "消火栓", "suisou": "防火水槽", "防火水そう": "防火水槽",
                               "water_tank": "防火水槽"}


def key(name: str) -> str:
    """The comparison form of a column name."""
    text = unicodedata.normalize("NFKC", name).strip().lower()
    if "://" in text:
        text = text.rstrip("/").rsplit("/", 1)[-1]
    return text.replace(" ", "").replace("\u3000", "").replace("（", "(").replace("）", ")")


_LOOKUP = {key(alias): field for field, aliases in SYNONYMS.items() for alias in (field, *aliases)}


def resolve(columns: list[str], notes: list[str] | None = None) -> dict[str, str]:
    """cityos field -> the file's column holding it (first match wins), noting misspellings used."""
    found: dict[str, str] = {}
    for column in columns:
        field = _LOOKUP.get(key(column)) or _LOOKUP.get(key(column).rsplit("#", 1)[-1] if "#" in column else "")
        if field and field not in found:
            found[field] = column
            if notes is not None and column in MISSPELLINGS:
                notes.append(f"column {column!r} read as {MISSPELLINGS[column]!r} (a known misspelling)")
    return found
