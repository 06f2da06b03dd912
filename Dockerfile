# Builds the service in release mode and runs it on a slim Debian, as an unprivileged user.
FROM rust:1.95-bookworm AS build
# RocksDB's bindings are generated at build time with libclang (not in the rust image).
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The dependencies first, in a layer of their own: rebuilt only when the manifests change, so
# a change to the service's code compiles the service alone.
COPY Cargo.toml Cargo.lock ./
COPY crates/segment/Cargo.toml crates/segment/Cargo.toml
COPY crates/browser-tests/Cargo.toml crates/browser-tests/Cargo.toml
RUN mkdir -p src benches/data crates/segment/src crates/browser-tests/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs crates/segment/src/lib.rs crates/browser-tests/src/lib.rs \
 && for bench in segment_query import_throughput api_latency; do echo 'fn main() {}' > "benches/$bench.rs"; done \
 && cargo build --release --locked --bin qwry-contacts \
 && rm -rf src benches crates/segment/src crates/browser-tests/src
COPY . .
RUN touch src/main.rs src/lib.rs crates/segment/src/lib.rs \
 && cargo build --release --locked --bin qwry-contacts

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/qwry-contacts qwry
COPY --from=build /src/target/release/qwry-contacts /usr/local/bin/qwry-contacts
USER qwry
ENV LISTEN_ADDR=0.0.0.0:8080 DATA_DIR=/var/lib/qwry-contacts LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=6s --start-period=60s --retries=3 \
  CMD ["qwry-contacts", "healthcheck"]
ENTRYPOINT ["qwry-contacts"]
