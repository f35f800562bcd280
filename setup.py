"""Maps the top-level folders (the architecture) to the import names ``cityos.<folder>``.

The folders carry no ``__init__.py``: ``cityos.platform`` would otherwise be a top-level
``platform`` package that shadows Python's standard module for anyone working in the repo root.
Metadata lives in pyproject.toml; this file only computes the package map.
"""

from setuptools import find_namespace_packages, setup

COMPONENTS = ["platform", "ingest", "gis", "opendata", "apps", "deploy"]

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder in COMPONENTS:
    package_dir[f"cityos.{folder}"] = folder
    packages.append(f"cityos.{folder}")
    packages += [
        f"cityos.{folder}.{sub}"
        for sub in find_namespace_packages(where=folder, exclude=["node_modules*", "*.node_modules*"])
    ]

setup(
    packages=packages,
    package_dir=package_dir,
    include_package_data=True,
    package_data={"": ["*.sql", "*.conf", "*.yaml", "*.json", "*.html", "*.js", "*.css", "*.svg", "*.ini", "*.csv",
                       "*.geojson", "*.md"]},
)
