# fedjoint coordinator: gRPC federation service (7443, mTLS), dashboard + /metrics (8080).
# Build from the repository root:
#   docker build -f deploy/docker/coordinator.Dockerfile -t fedjoint/coordinator:0.1.0 .
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
# openssl: deploy/certs/make-certs.sh runs from this image in the compose demo.
RUN apt-get update && apt-get install -y --no-install-recommends openssl tini ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production FEDJOINT_LOG_JSON=1
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/proto ./proto
COPY deploy/certs/make-certs.sh /usr/local/bin/make-certs.sh
RUN ln -s /app/dist/cli/coordinator.js /usr/local/bin/coordinator \
  && ln -s /app/dist/cli/fedjoint.js /usr/local/bin/fedjoint \
  && chmod +x /app/dist/cli/*.js \
  && mkdir -p /certs /state /etc/fedjoint && chown node:node /certs /state
USER node
VOLUME ["/state"]
EXPOSE 7443 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli/coordinator.js"]
CMD ["--config", "/etc/fedjoint/study.yaml", "--port", "7443", "--cert", "/certs/coordinator.pem", "--key", "/certs/coordinator.key", "--ca", "/certs/ca.pem", "--state", "/state", "--host", "0.0.0.0", "--dashboard", ":8080"]
