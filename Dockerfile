# berth: berthd as PID 1, with the berth CLI and libberth, on Debian 12.
#
#   docker build -t berth .
#   docker run -d --name berth -v berth-state:/var/lib/berth berth
#
# See docs/docker.md for the three ways to share one broker between
# containers (docs/examples/compose-*.yml).

# ---- build ----
# Each layer is invalidated only by what it reads, so that an edit to a
# source file rebuilds from `COPY . .` on: make alone, not a minute of
# apt-get, autogen.sh and configure.
FROM debian:bookworm-slim AS build
WORKDIR /src
# The Debian build dependencies, by the script README's quick start and
# CI build with.
COPY .ci/build .ci/build
RUN sh .ci/build --deps-only
# autogen.sh and configure read only these files.
COPY autogen.sh configure.ac Makefile.am ./
COPY tests/Makefile.inc tests/
COPY clients/libberth/berth.h.in clients/libberth/berth.pc.in clients/libberth/
RUN ./autogen.sh && ./configure --prefix=/usr/local
# The sources; the runtime stage takes only the programs and the shared
# library from /out.
COPY . .
RUN make -j"$(nproc)" \
 && make install-strip DESTDIR=/stage \
 && mkdir -p /out/usr/local/bin /out/usr/local/lib \
 && cp -a /stage/usr/local/bin/berthd /stage/usr/local/bin/berth \
	/out/usr/local/bin/ \
 && cp -a /stage/usr/local/lib/libberth.so.* /out/usr/local/lib/

# ---- runtime ----
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="berth" \
      org.opencontainers.image.description="berthd, a local port broker: free ports under names, over HTTP/JSON on loopback" \
      org.opencontainers.image.licenses="ISC" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim" \
      org.opencontainers.image.documentation="docs/docker.md"

# berthd needs libevent (and its OpenSSL part), jansson, SQLite and OpenSSL; berth and libberth need
# jansson. apt-get clean in the same layer: on a base without the
# official image's docker-clean, apt would leave its package caches and
# .debs in the image (~75 MB). The berth user owns the state directory and the socket
# directory, so a named volume mounted there starts out writable by it.
# Its uid is outside the hosts' system range (no host daemon shares it
# when the state is a bind mount: the database holds lease tokens).
ARG BERTH_UID=10001
ARG BERTH_GID=10001
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
	libevent-2.1-7 libevent-openssl-2.1-7 libjansson4 libsqlite3-0 libssl3 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid "$BERTH_GID" berth \
 && useradd --uid "$BERTH_UID" --gid berth --no-log-init \
	--home-dir /var/lib/berth --no-create-home \
	--shell /usr/sbin/nologin berth \
 && install -d -o berth -g berth -m 0750 /var/lib/berth \
 && install -d -o berth -g berth -m 0755 /run/berth

COPY --from=build /out/ /
# libberth lives in /usr/local/lib: refresh the loader's cache.
RUN ldconfig

# berthd is not root here, so its default database would be under
# $HOME/.local/state: name the volume's path instead. BERTH_ADDR is
# where the healthcheck (and `docker exec berth berth ...`) find berthd;
# set it together with BERTH_LISTEN when you change the listen address.
ENV BERTH_DB=/var/lib/berth/berth.db \
    BERTH_ADDR=127.0.0.1:62893

VOLUME ["/var/lib/berth"]
USER berth
WORKDIR /var/lib/berth

# No EXPOSE: berthd listens on 127.0.0.1:62893 (loopback only; berthd(8)).
# Share it through the container's network namespace, host networking
# or a Unix socket on a volume (docs/docker.md), not a published port.

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
	CMD ["berth", "health"]

# berthd stops cleanly on SIGTERM (Docker's stop signal) within 2 s and
# reaps any orphans it inherits, so it runs as PID 1 without an init.
STOPSIGNAL SIGTERM
ENTRYPOINT ["berthd"]
CMD []
