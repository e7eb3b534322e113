# syntax=docker/dockerfile:1
# Build stage: compiles TypeScript and the native SQLite module.
FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY test ./test
COPY bench ./bench
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

# Runtime stage: only what runs, as a non-root user; config and data are volumes.
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/bin ./bin
# The portal's pages and the web authenticator app are served from these folders (not compiled).
COPY --from=build /app/src/portal/pages/static ./src/portal/pages/static
COPY --from=build /app/src/portal/app/static ./src/portal/app/static
COPY --from=build /app/package.json ./
RUN useradd --system --uid 10001 --home-dir /var/lib/mailotp --shell /usr/sbin/nologin mailotp \
  && mkdir -p /etc/mailotp /var/lib/mailotp && chown mailotp /var/lib/mailotp
USER mailotp
VOLUME ["/etc/mailotp", "/var/lib/mailotp"]
# Ports below 1024 need CAP_NET_BIND_SERVICE or a port mapping: map 993->10993 etc. and listen high
# (docker-compose.yml and deploy/docker/mailotp.yaml do so).
EXPOSE 10993 10143 10995 10110 10465 10587 8443
ENTRYPOINT ["node", "/app/bin/mailotp"]
CMD ["start", "--config", "/etc/mailotp/mailotp.yaml"]
