# Herald: one image with the four programs.
#
#   docker build -t herald .
#   docker run --rm herald                         # heraldctl --help
#   docker run --rm -e HERALD_KAFKA_BROKERS=... herald herald-gateway
#
# The compose file (docker-compose.yml) chooses the program per service.
# Stage 1 builds on Debian 12 with the -dev packages; stage 2 carries only
# the shared libraries the programs link against (librdkafka, jansson, curl,
# libpq, libmicrohttpd, libwebsockets), CA certificates for TLS to brokers and providers,
# the time zone database for quiet hours, and curl for health checks.

# ---- build ----------------------------------------------------------------
FROM debian:bookworm AS build

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        librdkafka-dev libjansson-dev libcurl4-openssl-dev libpq-dev \
        libmicrohttpd-dev libwebsockets-dev check \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# The whole tree (less what .dockerignore drops): CMake globs the sources of
# each program, and the migrations are compiled into heraldctl.
COPY . .

RUN cmake -S . -B /build -DHERALD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" \
 && for p in herald-gateway herald-dispatcher herald-worker herald-realtime herald-webhooks \
            heraldctl; do \
        test -x "/build/bin/$p" || { echo "missing /build/bin/$p" >&2; exit 1; }; \
        "/build/bin/$p" --help >/dev/null || { echo "$p --help failed" >&2; exit 1; }; \
    done

# ---- runtime --------------------------------------------------------------
FROM debian:bookworm-slim

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        librdkafka1 libjansson4 libcurl4 libpq5 libmicrohttpd12 libwebsockets17 \
        ca-certificates tzdata curl \
 && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid/gid so volume ownership is predictable.
RUN groupadd --system --gid 10001 herald \
 && useradd --system --uid 10001 --gid herald --home-dir /var/lib/herald \
        --no-create-home --shell /usr/sbin/nologin herald \
 && mkdir -p /var/lib/herald/outbox \
 && chown -R herald:herald /var/lib/herald

COPY --from=build /build/bin/herald-gateway /build/bin/herald-dispatcher \
                  /build/bin/herald-worker /build/bin/herald-realtime \
                  /build/bin/herald-webhooks /build/bin/heraldctl \
                  /usr/local/bin/

# Inside a container the gateway must listen beyond loopback; the file
# providers write under the herald user's directory (a volume in compose).
# HERALD_METRICS_ADDR is left to each service: its default differs per daemon.
ENV HERALD_HTTP_ADDR=0.0.0.0:8080 \
    HERALD_OUTBOX_DIR=/var/lib/herald/outbox

WORKDIR /var/lib/herald
USER herald

# gateway API; dispatcher, email, sms, push /metrics and /healthz
EXPOSE 8080 9101 9102 9103 9104

# The daemons stop gracefully on SIGTERM (docker stop's signal): they finish
# in-flight work, commit offsets and flush, so give them time (compose sets
# stop_grace_period). Health checks are per program, e.g.
#   curl -fsS http://127.0.0.1:8080/healthz      (gateway)
#   curl -fsS http://127.0.0.1:9101/healthz      (dispatcher, with HERALD_METRICS_ADDR=0.0.0.0:9101)
CMD ["heraldctl", "--help"]
