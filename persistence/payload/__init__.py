"""The payload pipeline: how stored values are serialized, compressed,
encrypted and offloaded (see ``doc/payloads.rst``).

It sits between :mod:`persistence.models` (whose stored-format module calls
a pipeline for every value) and :mod:`persistence.backends` (each backend
builds one from its configuration).  Stages are found by name in the
``persistence.serializers``, ``persistence.compressors`` and
``persistence.ciphers`` entry-point groups.
"""

from __future__ import annotations

from .config import PAYLOAD_KEYS, parse_size, pipeline_from_conf
from .envelope import MARKER, is_envelope, refs_of
from .keys import KeyRing
from .offload import BlobStore
from .pipeline import Pipeline, collecting
from .registry import available_stages, register_stage, unregister_stage
from .stages import Cipher, Compressor, Serializer

__all__ = ["Pipeline", "pipeline_from_conf", "PAYLOAD_KEYS", "parse_size", "KeyRing",
           "BlobStore", "collecting", "MARKER", "is_envelope", "refs_of", "register_stage",
           "unregister_stage", "available_stages", "Serializer", "Compressor", "Cipher",
           "DEFAULT"]

#: The default pipeline (JSON, nothing else): values stored as themselves.
DEFAULT = Pipeline()
