"""A network model: (compute seconds, rounds, bytes) -> wall time on a link.

t = compute + rounds * latency + bytes * 8 / bandwidth, with bytes the
largest amount any server sends (the servers send in parallel).  The paper's
settings are predefined: LAN 3 Gbps / 0.8 ms, WAN 100 Mbps / 80 ms and
200 Mbps / 40 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

from .comm import Cost


@dataclass(frozen=True)
class Link:
    name: str
    bandwidth_bps: float
    latency_s: float

    def seconds(self, cost: Cost, compute_s: float = 0.0) -> float:
        return compute_s + cost.rounds * self.latency_s + cost.max_server_bytes * 8.0 / self.bandwidth_bps


LAN = Link("LAN 3Gbps/0.8ms", 3e9, 0.8e-3)
WAN = Link("WAN 100Mbps/80ms", 100e6, 80e-3)
WAN200 = Link("WAN 200Mbps/40ms", 200e6, 40e-3)
LINKS = (LAN, WAN, WAN200)
