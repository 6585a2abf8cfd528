"""The server's registration with a remote provider: its URL answers with our token.

A self-connecting kind (see ``connections.kinds``): once registered, a successful probe connects it.
"""

from connections.probing.probes.base import HttpProbe
from connections.probing.probes.registry import register_probe


class RemoteProviderProbe(HttpProbe):
    kind = "remote_provider"


register_probe(RemoteProviderProbe())
