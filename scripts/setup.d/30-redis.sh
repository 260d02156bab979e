#!/usr/bin/env bash
# Make sure the Redis server the persistence-redis example plugin's tests use is
# running on 127.0.0.1:6379, as on the python-svc machines.  Idempotent: a
# running server is left alone; a stopped one is started with the machine's own
# command (nothing kept on disk) and waited for (bounded).  Without redis-server
# installed, the plugin test fails under CI=true (skips locally).
set -uo pipefail

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if redis_up; then
    echo "Redis is accepting connections"
    exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server is not installed: the redis plugin test cannot run" >&2
    exit 0
fi
echo "starting Redis"
install -d /var/lib/redis /var/log/redis 2>/dev/null || true
redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
for _ in $(seq 1 60); do
    if redis_up; then
        echo "Redis is accepting connections"
        exit 0
    fi
    sleep 0.5
done
echo "Redis did not accept connections within 30 s" >&2
exit 1
