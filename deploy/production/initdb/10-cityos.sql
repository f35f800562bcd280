-- Runs once when the timescaledb-ha volume is created: the platform's owner role, database and
-- extensions, and CKAN's own database. Passwords are set afterwards with ALTER ROLE (see README).
create role cityos login createrole;
create database cityos owner cityos;
\connect cityos
create extension if not exists timescaledb;
create extension if not exists postgis;
\connect postgres
create role ckan login;
create database ckan owner ckan;
