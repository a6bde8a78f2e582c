# Multi-stage build: a full toolchain to compile, a small Debian image to run, as a non-root user.
FROM rust:1.85-bookworm AS build
WORKDIR /src
COPY . .
# `credgate --version` names this revision; without it the build asks git (when .git was copied).
ARG CREDGATE_GIT_REVISION=""
RUN cargo build --release --locked -p credgate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/credgate --create-home credgate
COPY --from=build /src/target/release/credgate /usr/local/bin/credgate
USER credgate
WORKDIR /var/lib/credgate
ENV CREDGATE_LISTEN=0.0.0.0:8080 CREDGATE_DATABASE_URL=/var/lib/credgate/credgate.db
EXPOSE 8080
ENTRYPOINT ["credgate"]
CMD ["serve"]
