"""The local runtime: provisions and runs the platform's servers on 127.0.0.1 for development and demo.

Each component module (postgres, broker, api, ...) exposes a class with ``name``, ``external``,
``up()``, ``down()``, ``status()`` (a :class:`cityos.deploy.runtime.component.ComponentStatus`) and
``log_path()``; :mod:`cityos.deploy.runtime.stack` orders them.
"""
