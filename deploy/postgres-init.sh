#!/bin/sh
# Run once by the postgres image on an empty data folder: one role and one database for the imgvault store,
# one for MLflow's tracking store. Passwords come from the environment (.env), never from this file.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v imgvault_password="$IMGVAULT_DB_PASSWORD" -v mlflow_password="$MLFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE imgvault LOGIN PASSWORD :'imgvault_password';
CREATE DATABASE imgvault OWNER imgvault;
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
SQL
