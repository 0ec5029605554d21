# One image of infra/local/compose.local.yaml, built on this machine from Debian packages only
# (docs/local.md, "Compose on these machines"); context: infra/local. One file per image: the
# classic builder builds every stage above a target's, whatever its network.
# Built on the host's network (build.network: host), the one way out this engine gives a
# container: apt reaches Debian's mirror as the host does.

# PostgreSQL 15 (bookworm's; Docker Hub's postgres:16.6-alpine in compose.yaml), with the
# entry point the official image has for what compose.yaml uses: POSTGRES_USER, POSTGRES_PASSWORD
# and POSTGRES_DB make the cluster on first start, in /var/lib/postgresql/data.
FROM multidb-local/debian:bookworm
# No "main" cluster at install: the entry point makes the one in the volume.
RUN mkdir -p /etc/postgresql-common \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
    && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
COPY images/postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
