# Builds the service in release mode and runs it on a slim Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin qwry-contacts

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/qwry-contacts /usr/local/bin/qwry-contacts
ENV LISTEN_ADDR=0.0.0.0:8080 DATA_DIR=/var/lib/qwry-contacts
EXPOSE 8080
ENTRYPOINT ["qwry-contacts"]
