"""Generic HTTP(S) endpoints: the base probe as it is."""

from connections.probing.probes.base import HttpProbe
from connections.probing.probes.registry import register_probe

register_probe(HttpProbe())
