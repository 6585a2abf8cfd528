"""The server's registration with a remote provider: its URL answers with our token.

A self-connecting kind (see ``connections.kinds``): once registered, a successful probe connects it.
"""

from .base import HttpProbe
from .registry import register_probe


class RemoteProviderProbe(HttpProbe):
    kind = "remote_provider"


register_probe(RemoteProviderProbe())
