#!/usr/bin/env bash
# Make sure ZooKeeper (Debian package `zookeeper`: server jars and scripts) is
# installed for the ZooKeeper backend's tests.  Idempotent: nothing happens
# when it is already installed.  No server is started here: the tests start
# their own standalone server and 3-node ensemble on free loopback ports, with
# their own configs and data directories, and stop them (tests/fixtures/_zkserver.py).
set -euo pipefail

if [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; then
    echo "ZooKeeper is installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "ZooKeeper is missing and this user cannot install packages (no root, no sudo)" >&2
        exit 1
    fi
fi

echo "installing ZooKeeper (apt-get install -y zookeeper)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends zookeeper
test -f /usr/share/java/zookeeper.jar
echo "ZooKeeper is installed"
