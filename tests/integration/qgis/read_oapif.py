"""Read an OGC API Features collection with QGIS's own OAPIF provider (run with Debian's python3 + python3-qgis).

Usage: python3 read_oapif.py BASE_URL COLLECTION  ->  prints one JSON line: valid, features, fields, crs.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import QgsApplication, QgsVectorLayer

app = QgsApplication([], False)
app.initQgis()
base, collection = sys.argv[1], sys.argv[2]
layer = QgsVectorLayer(f"url='{base}' typename='{collection}'", collection, "OAPIF")
features = list(layer.getFeatures()) if layer.isValid() else []
print(json.dumps({"valid": layer.isValid(), "features": len(features),
                  "fields": [f.name() for f in layer.fields()], "crs": layer.crs().authid(),
                  "error": layer.error().summary() if not layer.isValid() else ""}))
sys.stdout.flush()
os._exit(0)  # QGIS's own teardown crashes in some headless environments; nothing is left to clean up
