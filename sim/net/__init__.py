"""Messages and the links they cross (wired now; the NR radio hop joins with the uplink)."""

from edgetwin.sim.net.link import JitterConfig, LinkConfig, WiredLink
from edgetwin.sim.net.message import Hop, Message

__all__ = ["Hop", "JitterConfig", "LinkConfig", "Message", "WiredLink"]
