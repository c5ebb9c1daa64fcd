# fedjoint site client, GPU image: @tensorflow/tfjs-node-gpu 4.22.0 (libtensorflow 2.9, CUDA 11.x,
# cuDNN 8) on an NVIDIA CUDA runtime base. Run with the NVIDIA container toolkit:
#   docker run --gpus all … fedjoint/site:0.1.0-gpu --joint knee …
# Build from the repository root:
#   docker build -f deploy/docker/site-gpu.Dockerfile -t fedjoint/site:0.1.0-gpu .
ARG NODE_IMAGE=node:20-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04

FROM ${NODE_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
# The install script of tfjs-node-gpu downloads libtensorflow with GPU support.
RUN npm install --no-save --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && node -e "require('@tensorflow/tfjs-node-gpu/package.json')"

FROM ${CUDA_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends tini ca-certificates \
  && rm -rf /var/lib/apt/lists/* \
  && useradd --uid 1000 --create-home node
# Node 20 from the official image (its binary needs glibc >= 2.28; Ubuntu 22.04 has 2.35).
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
ENV NODE_ENV=production FEDJOINT_LOG_JSON=1 FEDJOINT_BACKEND=tensorflow
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/proto ./proto
RUN ln -s /app/dist/cli/site-client.js /usr/local/bin/site-client \
  && ln -s /app/dist/cli/fedjoint.js /usr/local/bin/fedjoint \
  && chmod +x /app/dist/cli/*.js \
  && mkdir -p /certs /data /state && chown node:node /data /state
USER node
VOLUME ["/state"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli/site-client.js"]
CMD ["--help"]
