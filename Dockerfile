# One image for every zimage command (worker, emulator, api ...): `docker run IMAGE worker`.
# Pinned to the Node the test suite runs on: a rebuild gets the same runtime (bump deliberately).
FROM node:20.20.2-bookworm-slim
ENV COREPACK_ENABLE_DOWNLOAD_PROMPT=0
WORKDIR /app
RUN corepack enable
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc tsconfig.base.json ./
COPY packages/shared/package.json packages/shared/
COPY packages/producer/package.json packages/producer/
COPY packages/worker/package.json packages/worker/
COPY packages/emulator/package.json packages/emulator/
COPY packages/cli/package.json packages/cli/
# Development dependencies too: the entry point runs the TypeScript sources through tsx.
RUN pnpm install --frozen-lockfile
COPY packages packages
COPY examples examples
ENV NODE_ENV=production
USER node
ENTRYPOINT ["node", "--conditions=zimage-source", "--import", "tsx", "packages/cli/src/main.ts"]
