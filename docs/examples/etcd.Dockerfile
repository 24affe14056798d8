# etcd for compose-cluster.yml: Debian 12's etcd-server (etcd 3.4), the
# etcd berth's cluster is tested with (docs/cluster.md). Its flags come
# from the compose file's command. From the repository root:
#
#   docker build -t berth-etcd -f docs/examples/etcd.Dockerfile docs/examples
FROM debian:bookworm-slim

# apt-get clean in the same layer, as in berth's own Dockerfile, so that no
# package cache stays in the image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends etcd-server \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# The package's etcd user owns /var/lib/etcd (mode 0700), so a named
# volume mounted there starts out writable by it.
USER etcd
WORKDIR /var/lib/etcd
VOLUME ["/var/lib/etcd"]
EXPOSE 2379

# etcd 3.4 refuses to start on arm64 unless told to: there, add
#   ENV ETCD_UNSUPPORTED_ARCH=arm64
# etcd stops cleanly on SIGTERM (Docker's stop signal) as PID 1.
ENTRYPOINT ["etcd"]
