-- Runs once when the timescaledb-ha volume is created: the platform's owner role, database and
-- extensions, and CKAN's own database. The roles' passwords come from the container's environment
-- (CITYOS_DB_PASSWORD, CKAN_DB_PASSWORD, set from .env), read by psql's \getenv: never written here.
\getenv cityos_password CITYOS_DB_PASSWORD
\getenv ckan_password CKAN_DB_PASSWORD
create role cityos login createrole password :'cityos_password';
create database cityos owner cityos;
\connect cityos
create extension if not exists timescaledb;
create extension if not exists postgis;
\connect postgres
create role ckan login password :'ckan_password';
create database ckan owner ckan;
