# loom serve in a container. Never built as an image (no Docker engine where this was written); its steps are
# replayed without Docker by deploy/check-image-steps.sh (npm ci --omit=dev, non-root serve, SIGTERM).
# Build: docker build -t loom .   Run: docker run -p 8000:8000 -v $PWD/models:/models loom serve /models/my-model --host 0.0.0.0
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 / onnxruntime-node may need to build or download native parts
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ ca-certificates && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc tsconfig.json ./
# `npm ci` runs the package's `prepare` script (compiles the CLI into dist/cli and the Studio into studio-dist),
# so the sources it bundles must be in place first. The optional dependency node-llama-cpp (backend: gguf) comes
# with its prebuilt CPU binary; without it only gguf models are refused.
COPY scripts ./scripts
COPY bin ./bin
COPY src ./src
COPY studio-ui ./studio-ui
COPY examples ./examples
RUN npm ci --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production LOOM_REGISTRY=/data/registry.db
# Owned by the runtime user: bin/loom.js rebuilds dist/cli if copying changed the sources' mtimes.
COPY --from=build --chown=node:node /app ./
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8000
ENTRYPOINT ["node", "bin/loom.js"]
CMD ["serve", "/models/model", "--host", "0.0.0.0", "--port", "8000"]
