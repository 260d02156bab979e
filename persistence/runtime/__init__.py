"""What an engine touches while a flow runs: :class:`~.storage.Storage` (a facade)
and the pieces it is built from (lookup, staleness, listeners, atoms, claim keeper).

Builds on :mod:`persistence.backends` through the public ``Backend``/``Connection``
contract only; never imports a backend implementation.
"""
