"""cityos_pgsearch: CKAN search without Solr, kept in CKAN's own PostgreSQL database."""
