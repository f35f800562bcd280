"""The city's layers, one declaration per file (:class:`cityos.gis.declarations.Layer`); see
:mod:`cityos.gis.declarations` for what is derived from them."""
