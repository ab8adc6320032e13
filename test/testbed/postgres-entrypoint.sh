#!/bin/sh
# The test bed's PostgreSQL: a data directory made on the first start (database `gold`, trust auth on
# the stack's own network), then the server in the foreground as `postgres` (SIGINT: a fast shutdown).
set -e
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  runuser -u postgres -- initdb -D "$PGDATA" --auth=trust -U postgres > /dev/null
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
  runuser -u postgres -- pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start > /dev/null
  runuser -u postgres -- psql -q -c "create database gold"
  runuser -u postgres -- pg_ctl -D "$PGDATA" -w stop > /dev/null
fi
exec runuser -u postgres -- postgres -D "$PGDATA"
