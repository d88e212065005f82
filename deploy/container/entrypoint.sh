#!/bin/sh
# The image's entry point (behind tini): the embedded PostgreSQL of the
# zero-setup default is not in the image, so without DATABASE_URL say so in
# one line instead of failing somewhere inside start-up.
set -eu
cd /app
case "${1:-}" in
  -h | --help | help | -V | --version) ;;
  *)
    if [ -z "${DATABASE_URL:-}" ] && ! grep -qs '^DATABASE_URL=.' .env; then
      echo "pmt-worker: set DATABASE_URL (postgres://user:password@host:5432/dbname): the container has no embedded PostgreSQL" >&2
      exit 2
    fi
    ;;
esac
exec node /app/bin/pmt-worker.js "$@"
