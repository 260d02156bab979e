"""The ``zookeeper`` backend: records as znodes in a ZooKeeper ensemble, through kazoo.

Layout under the root ``path`` (default ``/taskflow``), as for every
path-based backend::

    books/<uuid>          logbook record; children: one empty link per flow
    flow_details/<uuid>   flow record;    children: one empty link per atom
    atom_details/<uuid>   atom record

A record too large for one request lives in parts under ``<record>/.chunks``
(see :mod:`.chunks`); a save too large for one transaction is split over
several, ordered so a crash between them never exposes an incomplete record
(see :mod:`.writes`).  Revisions are znode versions.

Example configuration::

    fetch("zookeeper://127.0.0.1:2181,127.0.0.1:2182/taskflow?timeout=10")
    fetch({"connection": "zookeeper", "hosts": "zk1:2181,zk2:2181", "path": "/taskflow"})
    fetch({"connection": "zookeeper", "path": "/taskflow"}, client=started_kazoo_client)
"""

from .backend import ZkBackend
from .connection import ZkConnection

__all__ = ["ZkBackend", "ZkConnection"]
