#!/bin/sh
# The test bed's PostgreSQL: a data directory made on the first start (database `gold`, trust auth on
# the stack's own network), then the server in the foreground as `postgres`, as PID 1 (setpriv execs,
# runuser would stay as a parent that does not pass SIGINT on: every stop would wait for the kill).
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
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA"
