"""Maps the top-level folders (the architecture) to the import names ``cityos.<folder>``.

The folders carry no ``__init__.py``: ``cityos.platform`` would otherwise be a top-level
``platform`` package that shadows Python's standard module for anyone working in the repo root.
Metadata lives in pyproject.toml; this file computes the package map, declares the run-time data
files, and builds the apps' vendor bundle (MapLibre GL JS, Swagger UI, ReDoc; git-ignored, built
from npm by ``apps/build.py``) before a wheel is assembled, so a built wheel serves complete apps.
"""

import importlib.util
import os
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
COMPONENTS = ["platform", "ingest", "gis", "sta", "opendata", "apps", "deploy"]
#: never packaged: npm's install folder. The CKAN extension (opendata/ckanext-cityos) is shipped whole, with
#: its pyproject.toml: the local runtime installs it into CKAN's own environment from the installed package.
EXCLUDED = ["node_modules", "node_modules.*", "*.node_modules", "*.node_modules.*"]
#: files the platform reads at run time, beside its modules
DATA = ["*.sql", "*.conf", "*.yaml", "*.json", "*.html", "*.js", "*.mjs", "*.css", "*.svg", "*.png", "*.ini",
        "*.csv", "*.geojson", "*.jsonld", "*.md", "*.toml", "*.txt", "LICENSE", "Dockerfile"]

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder in COMPONENTS:
    package_dir[f"cityos.{folder}"] = folder
    packages.append(f"cityos.{folder}")
    packages += [f"cityos.{folder}.{sub}" for sub in find_namespace_packages(where=folder, exclude=EXCLUDED)]


class BuildWithApps(build_py):
    """build_py that first builds the apps' vendor bundle (npm), unless CITYOS_SKIP_APPS_BUILD is set
    (an editable install for development builds it on first use instead)."""

    def run(self) -> None:
        if not os.environ.get("CITYOS_SKIP_APPS_BUILD") and not self.editable_mode:
            spec = importlib.util.spec_from_file_location("cityos_apps_build", HERE / "apps" / "build.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.ensure_built()
            # ensure_built() ran after setuptools listed the packages: list the vendor folders again
            for sub in find_namespace_packages(where="apps", include=["vendor", "vendor.*"]):
                if f"cityos.apps.{sub}" not in self.packages:
                    self.packages.append(f"cityos.apps.{sub}")
        super().run()


setup(
    packages=packages,
    package_dir=package_dir,
    include_package_data=True,
    package_data={"": DATA},
    exclude_package_data={"": ["package.json", "package-lock.json"]},
    cmdclass={"build_py": BuildWithApps},
)
