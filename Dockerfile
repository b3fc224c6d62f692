# syntax=docker/dockerfile:1
# The fingerv7 coordination sidecar: a small production image of the agent.
#
#   docker build -t fingerv7-sidecar .                       # the agent (default target)
#   docker build --target sim-worker -t fingerv7-sim-worker .  # a simulated fingerv7 worker
#
# Stages: build (all dependencies, TypeScript → dist/) → deps (production dependencies
# only) → agent (node + dist + production node_modules, non-root). The sim-worker stage
# is used by docker-compose.yml for the simulated workers; it needs no dependencies.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci runs it (postinstall): a fix to the PostgreSQL driver, see the file.
COPY tools/patch-postgres.mjs ./tools/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY types ./types
COPY shared ./shared
COPY leader ./leader
COPY agent ./agent
COPY tools/build.mjs tools/sim-worker.ts tools/sim-worker-main.ts ./tools/
RUN npm run build
RUN npx tsc --outDir dist-sim --rootDir . --module nodenext --moduleResolution nodenext --target es2022 --types node --skipLibCheck --strict tools/sim-worker-main.ts

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY tools/patch-postgres.mjs ./tools/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS sim-worker
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=build /app/dist-sim ./dist-sim
USER node
CMD ["node", "dist-sim/tools/sim-worker-main.js"]

FROM ${NODE_IMAGE} AS agent
ENV NODE_ENV=production \
    PORT=8001
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# fingerctl inside the container: docker compose exec agent-1 node bin/fingerctl.js status
COPY bin ./bin
# Files stay owned by root (read-only for the agent); it runs as the official node
# image's unprivileged user (uid 1000).
USER node
EXPOSE 8001
# /health answers 200 only when PostgreSQL and Redis answer and heartbeats succeed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8001)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The agent drains on SIGTERM (docker stop); give it DRAIN_TIMEOUT + a margin:
#   docker stop -t 30, or stop_grace_period in compose.
STOPSIGNAL SIGTERM
# dist/agent/main.js is one bundled file (tools/build.mjs). The V8 flags hold an agent of
# a fleet of fingerv7's size (up to some thousands of streams) within 80 MB resident:
# --max-semi-space-size=1 caps the young generation at 2 × 1 MB instead of 2 × 16 MB
# (about 15-25 MB per agent; the agent allocates little, a follower about 1 MB/s);
# --single-threaded runs V8's collector and compiler on the main thread (no helper
# threads, nor their C library arenas: about 4 MB); --optimize-for-size keeps the old
# generation closer to what is live. They make plans over a large catalog slower: with
# tens of thousands of streams, run `node --max-semi-space-size=16 dist/agent/main.js`
# instead (README: Running an agent).
CMD ["node", "--max-semi-space-size=1", "--single-threaded", "--optimize-for-size", "dist/agent/main.js"]
