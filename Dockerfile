# Build: compile TypeScript with the dev dependencies.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --ignore-scripts && npx tsc -p tsconfig.build.json

# Run: production dependencies only, Debian's pg_dump/pg_restore 15, non-root.
FROM node:22-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o node -g node -m 0700 /var/lib/pmt-worker
WORKDIR /app
ENV NODE_ENV=production HTTP_HOST=0.0.0.0 HTTP_PORT=9464 PMT_HOME=/var/lib/pmt-worker
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY migrations ./migrations
COPY sql ./sql
USER node
VOLUME /var/lib/pmt-worker
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD curl -fsS http://127.0.0.1:9464/healthz || exit 1
# Exec form: SIGTERM reaches node itself, which lets running jobs finish.
ENTRYPOINT ["node", "bin/pmt-worker.js"]
CMD ["start"]
