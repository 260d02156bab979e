"""What the backend implementations share about the client libraries they drive.

Below every implementation and importing none of them (import-linter checks
it), so the SQL backend, the ZooKeeper backend, the read-only TaskFlow-store
reader and the tools reach the same code without importing each other:
:mod:`.sqlurl` (a SQL database URL as our URI parser reads it, its default
driver), :mod:`.sqlitefile` (a sqlite file opened so that nothing can write
it) and :mod:`.zkclient` (credentials kept out of kazoo's log lines).
"""
