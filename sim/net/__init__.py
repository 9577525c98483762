"""Messages, the links they cross, and the request's journey over them.

Wired and ideal hops now; the NR radio hop joins with the uplink.
"""

from edgetwin.sim.net.journey import Carrier, IdealLink, JourneyConfig, Journeys
from edgetwin.sim.net.link import JitterConfig, LinkConfig, WiredLink
from edgetwin.sim.net.message import Hop, Message

__all__ = [
    "Carrier",
    "Hop",
    "IdealLink",
    "JitterConfig",
    "JourneyConfig",
    "Journeys",
    "LinkConfig",
    "Message",
    "WiredLink",
]
