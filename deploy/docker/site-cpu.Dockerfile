# fedjoint site client, CPU image: the native engine (oneDNN + OpenBLAS kernels), and
# @tensorflow/tfjs-node (the production backend at hospitals without a GPU).
# Build from the repository root:
#   docker build -f deploy/docker/site-cpu.Dockerfile -t fedjoint/site:0.1.0-cpu .
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 libopenblas-dev libdnnl-dev \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
# The optional peer backend; its install script fetches libtensorflow (CPU).
RUN npm install --no-save --no-audit --no-fund @tensorflow/tfjs-node@4.22.0
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
COPY native ./native
COPY scripts ./scripts
RUN npm run build && FEDJOINT_REQUIRE_NATIVE=1 npm run build:native \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends libopenblas0 libdnnl2 libgomp1 tini ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production FEDJOINT_LOG_JSON=1
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/proto ./proto
COPY --from=build /app/native/build/Release/fedjoint_native.node ./native/build/Release/fedjoint_native.node
RUN ln -s /app/dist/cli/site-client.js /usr/local/bin/site-client \
  && ln -s /app/dist/cli/fedjoint.js /usr/local/bin/fedjoint \
  && chmod +x /app/dist/cli/*.js \
  && mkdir -p /certs /data /state && chown node:node /data /state
USER node
VOLUME ["/state"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli/site-client.js"]
CMD ["--help"]
