"""Declared analyses, one per file (:class:`cityos.gis.declarations.Analysis`): each becomes a ``cityos gis``
command, an API route, an export and, when asked, an open-data builder (:mod:`cityos.gis.declarations`)."""
