# syntax=docker/dockerfile:1
# Multi-stage build: cargo-leptos builds the server and the console; the runtime image holds only
# the binary, the console's assets and curl for the health check.

# Base images are pinned by digest (the tag says which release it is; the digest is what is pulled).
# To update: `docker buildx imagetools inspect rust:1.95-bookworm` and replace the digest.
FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown
# cargo-leptos would download wasm-bindgen and wasm-opt; install them from the registries instead.
RUN cargo install cargo-leptos@0.3.10 --locked \
 && cargo install wasm-bindgen-cli --version 0.2.130
WORKDIR /src
COPY tools/package.json tools/package-lock.json tools/
RUN npm ci --prefix tools --no-audit --no-fund
ENV PATH=/src/tools/node_modules/.bin:$PATH
COPY . .
RUN cargo leptos build --release

FROM debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251 AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin llmbridge \
 && mkdir -p /app/data \
 && chown llmbridge:llmbridge /app/data
WORKDIR /app
COPY --from=builder /src/target/release/llm-bridge /usr/local/bin/llm-bridge
COPY --from=builder /src/target/site /app/site
ENV LLM_BRIDGE_LISTEN=0.0.0.0:3000 \
    LLM_BRIDGE_SITE_ROOT=/app/site \
    LLM_BRIDGE_DATA_DIR=/app/data
USER llmbridge
EXPOSE 3000
VOLUME ["/app/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "http://127.0.0.1:3000/health/live"]
ENTRYPOINT ["/usr/local/bin/llm-bridge"]
