"""The path-based template: logbook -> flow -> atom logic written once over a
handful of path primitives (get, set, delete, list, ensure, transaction), split
into the connection, its lifecycle operations and its flow claims."""
