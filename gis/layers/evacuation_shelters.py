"""指定避難所一覧 (standard municipal open dataset): designated evacuation shelters with their capacity.

The whole layer is this file: its table (created from this declaration, no migration), the names files
use for its columns, its OGC collection and export, the demo city's shelters (the demo's schools and
community centres, as in most Japanese cities) and how the staff map draws it.
"""

from cityos.gis.declarations import Column, Layer, Style

#: Capacity of a demo shelter by the kind of building that holds it (gymnasium / hall).
DEMO_CAPACITY = {"school": 400, "community_centre": 80}


def _demo(city):
    facilities = city.facilities
    shelters = facilities[facilities["kind"].isin(list(DEMO_CAPACITY))].sort_values("id").copy()
    shelters["capacity"] = [DEMO_CAPACITY[k] for k in shelters["kind"]]
    shelters["kind"] = ["指定避難所" if k == "school" else "指定緊急避難場所" for k in shelters["kind"]]
    shelters["id"] = [f"EV{i + 1:04d}" for i in range(len(shelters))]
    shelters["address"] = ""
    shelters["note"] = "demo"
    return shelters[["id", "name", "kind", "address", "capacity", "district_code", "note", "geometry"]]


LAYER = Layer(
    "evacuation_shelters", "gis.evacuation_shelters", "Designated evacuation shelters", "指定避難所",
    (Column("id", not_null=True),
     Column("name", not_null=True, source=("名称", "施設名", "避難所名")),
     Column("kind", not_null=True, source=("種別", "区分")),
     Column("address", not_null=True, source=("所在地_連結表記", "住所", "所在地")),
     Column("capacity", "integer", source=("収容人数", "想定収容人数", "収容可能人数")),
     Column("district_code", source=("町字ID", "地区コード")),
     Column("note", not_null=True, source=("備考",))),
    key="id", demo=_demo,
    style=Style("circle", "#2c7fb8", "指定避難所", "Designated evacuation shelters"))
