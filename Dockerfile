# pmt-worker's image. Build arguments:
#   BASE              Node 20.12+ on Debian 12 with user "node" (default: the
#                     official node:22-bookworm-slim; CI builds its own, see
#                     test/deploy/container/build-base.sh)
#   PG_CLIENT_SOURCE  pgdg (default): PGDG's postgresql-client-$PG_CLIENT_MAJOR
#                     from apt.postgresql.org; debian: Debian's postgresql-client
#                     15, where apt.postgresql.org cannot be reached
#   PG_CLIENT_MAJOR   18: pg_dump N backs up servers 9.2 to N (`doctor` says which)
# Run it with a stop timeout a backup fits in: `docker run --stop-timeout 600`
# or `docker stop -t 600` (docker's default, 10 s, kills a running backup).
ARG BASE=node:22-bookworm-slim

# Build: compile TypeScript with the dev dependencies.
FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# Run: production dependencies only, non-root, tini as PID 1.
FROM ${BASE}
ARG PG_CLIENT_SOURCE=pgdg
ARG PG_CLIENT_MAJOR=18
COPY deploy/container/install-pg-client.sh deploy/container/apt.postgresql.org.asc /tmp/
RUN sh /tmp/install-pg-client.sh "$PG_CLIENT_SOURCE" "$PG_CLIENT_MAJOR" \
 && rm /tmp/install-pg-client.sh /tmp/apt.postgresql.org.asc \
 && install -d -o node -g node -m 0700 /var/lib/pmt-worker
WORKDIR /app
# The web console (/console) needs CONSOLE_PASSWORD off loopback: off unless the operator sets both.
ENV NODE_ENV=production HTTP_HOST=0.0.0.0 HTTP_PORT=9464 PMT_HOME=/var/lib/pmt-worker CONSOLE=off
COPY package.json package-lock.json ./
# No install scripts and no optional packages: the embedded PostgreSQL (an
# optional package with a native install step) is not used in a container,
# where DATABASE_URL is required. The npm cache goes in the same layer.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf /root/.npm /tmp/*
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY migrations ./migrations
COPY sql ./sql
COPY deploy/container/entrypoint.sh deploy/container/healthcheck.mjs ./deploy/container/
# `docker exec <container> pmt-worker doctor` goes through the same entry point.
RUN ln -s /app/deploy/container/entrypoint.sh /usr/local/bin/pmt-worker
USER node
VOLUME /var/lib/pmt-worker
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["node", "/app/deploy/container/healthcheck.mjs"]
# tini forwards SIGTERM to node, which lets running jobs (a backup) finish, and reaps zombies.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/app/deploy/container/entrypoint.sh"]
CMD ["start"]
