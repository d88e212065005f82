#!/bin/sh
# Installs, in the image, tini (the init that reaps zombies and forwards
# SIGTERM) and the PostgreSQL client whose pg_dump/pg_restore back up the
# database. pg_dump N dumps servers 9.2 to N, so the image carries the newest:
#   pgdg   PGDG's postgresql-client-$2 from apt.postgresql.org (default, 18),
#          the repository signed by the key in apt.postgresql.org.asc
#          (B97B 0AFC AA1A 47F0 44F2 44A0 7FCC 7D46 ACCC 4CF8, the key Debian's
#          postgresql-common ships in /usr/share/postgresql-common/pgdg/);
#   debian Debian 12's postgresql-client (15), where apt.postgresql.org cannot
#          be reached: it backs up PostgreSQL 9.2 to 15 only.
set -eu
source=$1 major=$2
export DEBIAN_FRONTEND=noninteractive
case "$source" in
  pgdg)
    apt-get update
    apt-get install -y --no-install-recommends ca-certificates
    install -D -m 0644 /tmp/apt.postgresql.org.asc /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc
    . /etc/os-release
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" \
      >/etc/apt/sources.list.d/pgdg.list
    apt-get update
    apt-get install -y --no-install-recommends tini "postgresql-client-$major"
    ;;
  debian)
    apt-get update
    apt-get install -y --no-install-recommends tini ca-certificates postgresql-client
    ;;
  *)
    echo "PG_CLIENT_SOURCE=$source: expected pgdg (apt.postgresql.org) or debian (Debian's own postgresql-client)" >&2
    exit 2
    ;;
esac
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/log/apt /var/log/dpkg.log
pg_dump --version
