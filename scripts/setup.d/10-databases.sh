#!/usr/bin/env bash
# Make sure the PostgreSQL and MariaDB servers the SQL backend's tests use are
# running on 127.0.0.1 (5432, trust auth; 3306, root without password), as on
# the python-svc machines.  Idempotent: a running server is left alone; a
# stopped one is started with the machine's own commands and waited for
# (bounded).  A server that is not installed is reported, and the tests that
# need it then fail under CI=true (skip locally).
set -uo pipefail

wait_for() {  # name, check function
    local name=$1 check=$2
    for _ in $(seq 1 60); do
        if "$check"; then
            echo "$name is accepting connections"
            return 0
        fi
        sleep 0.5
    done
    echo "$name did not accept connections within 30 s" >&2
    return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }
maria_up() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }

status=0
if pg_up; then
    echo "PostgreSQL is accepting connections"
elif ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /etc/postgresql ]; then
    echo "PostgreSQL is not installed: the postgresql tests cannot run" >&2
else
    echo "starting PostgreSQL"
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_for PostgreSQL pg_up || status=1
fi

if maria_up; then
    echo "MariaDB is accepting connections"
elif [ ! -x /usr/sbin/mariadbd ]; then
    echo "MariaDB is not installed: the mysql tests cannot run" >&2
else
    echo "starting MariaDB"
    install -d -o mysql -g mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for MariaDB maria_up || status=1
fi
exit $status
