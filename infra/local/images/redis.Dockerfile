# One image of infra/local/compose.local.yaml, built on this machine from Debian packages only
# (docs/local.md, "Compose on these machines"); context: infra/local. One file per image: the
# classic builder builds every stage above a target's, whatever its network.
# Built on the host's network (build.network: host), the one way out this engine gives a
# container: apt reaches Debian's mirror as the host does.

# Redis 7.0 (bookworm's; Docker Hub's redis:7.4-alpine), its data in /data.
FROM multidb-local/debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /data && chown redis:redis /data
COPY images/redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
VOLUME /data
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
