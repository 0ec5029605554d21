#!/bin/sh
# What the official redis image's entry point does: `redis-server …` (or bare options) runs as
# the redis user, owning /data. Its Redis is built with protected mode off, so that other
# containers reach a server without a password; Debian's has it on: turned off here.
set -eu
case "${1:-}" in
    -*|*.conf) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ]; then
    if [ "$(id -u)" = 0 ]; then
        chown -R redis:redis /data
        exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
    fi
    shift
    exec redis-server --protected-mode no "$@"
fi
exec "$@"
