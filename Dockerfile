# Secrets broker image: compiled with the dev toolchain in a builder stage, then run from
# a slim stage that holds production dependencies, dist/ and migrations/ only.
#
#   docker build -t secrets-broker .
#   docker run -p 8080:8080 -v broker-data:/var/lib/secrets-broker secrets-broker
#
# With no DATABASE_URL the broker keeps PGlite data, the master key file and the first
# admin token in the BROKER_DATA_DIR volume. In production, set DATABASE_URL and pass
# BROKER_MASTER_KEY from a secret store.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS builder
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# .dockerignore keeps tests, docs and local build output out of this copy.
COPY . .
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    BROKER_DATA_DIR=/var/lib/secrets-broker
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY --from=builder /build/dist ./dist
COPY migrations ./migrations

# A fixed uid and gid, so that volumes and file permissions can be set up on the host.
RUN groupadd --system --gid 10001 secrets-broker \
    && useradd --system --uid 10001 --gid secrets-broker --home-dir "$BROKER_DATA_DIR" \
       --no-create-home --shell /usr/sbin/nologin secrets-broker \
    && mkdir -p "$BROKER_DATA_DIR" \
    && chown secrets-broker:secrets-broker "$BROKER_DATA_DIR" \
    && chmod 700 "$BROKER_DATA_DIR"
# Ownership is set before VOLUME, because build steps after it cannot change the volume's directory.
VOLUME ["/var/lib/secrets-broker"]
USER secrets-broker:secrets-broker

EXPOSE 8080
# GET /healthz answers while the process is up; node's fetch stands in for curl, which
# the slim image lacks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((response) => process.exit(response.ok ? 0 : 1), () => process.exit(1))"]

# One V8 background thread, as in `npm start`: see "Limits" in README.md.
ENTRYPOINT ["node", "--v8-pool-size=1", "dist/broker/cli/main.js"]
CMD ["serve"]
