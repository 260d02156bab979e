"""Resumption from a peer machine: two "hosts" (network namespaces) and shared servers."""
