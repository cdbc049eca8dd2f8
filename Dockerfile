# One image for every zimage command (worker, api, emulator ...): `docker run IMAGE worker`.
# Multi-stage: the build stage compiles the TypeScript; the runtime stage holds the built
# JavaScript and production dependencies only (no tsx, no TypeScript, no dev tools).
# Node 22 LTS, pinned to an exact release: a rebuild gets the same runtime (bump deliberately).

FROM node:22.23.3-bookworm-slim AS build
ENV COREPACK_ENABLE_DOWNLOAD_PROMPT=0
WORKDIR /src
RUN corepack enable
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc tsconfig.base.json ./
COPY packages/shared/package.json packages/shared/
COPY packages/producer/package.json packages/producer/
COPY packages/worker/package.json packages/worker/
COPY packages/emulator/package.json packages/emulator/
COPY packages/api/package.json packages/api/
COPY packages/cli/package.json packages/cli/
RUN pnpm install --frozen-lockfile
COPY packages packages
COPY examples examples
# Builds every package's dist/, then copies the CLI with its production dependencies (the other
# zimage packages as built tarball contents) to /out.
RUN pnpm -r build && pnpm --filter @zimage/cli deploy --prod --legacy /out

FROM node:22.23.3-bookworm-slim
ENV NODE_ENV=production \
    STORAGE_URL=file:/data/output \
    ZIMAGE_HEALTH_FILE=/tmp/zimage-health.json
WORKDIR /app
COPY --from=build /out /app
# The writable data volume (images with the default file: storage); the code stays root-owned.
RUN mkdir -p /data/output && chown -R node:node /data
VOLUME ["/data"]
USER node
# `zimage worker` and `zimage api` write ZIMAGE_HEALTH_FILE every 10 s (Redis and storage
# reachable); `zimage health` fails when it says otherwise or is older than 30 s. The emulator
# writes none: its compose service turns the check off.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/bin/zimage.js", "health"]
ENTRYPOINT ["node", "/app/bin/zimage.js"]
