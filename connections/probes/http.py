"""Generic HTTP(S) endpoints: the base probe as it is."""

from .base import HttpProbe
from .registry import register_probe

register_probe(HttpProbe())
