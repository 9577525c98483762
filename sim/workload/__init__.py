"""Request workloads: request records, arrival processes, token lengths, trace loaders."""

from edgetwin.sim.workload.arrivals import gamma_arrivals, poisson_arrivals, trace_arrivals
from edgetwin.sim.workload.lengths import (
    empirical_lengths,
    fixed_lengths,
    geometric_lengths,
    lengths_from_array,
)
from edgetwin.sim.workload.request import Request, make_requests
from edgetwin.sim.workload.servegen import servegen_arrivals
from edgetwin.sim.workload.source import WorkloadSource
from edgetwin.sim.workload.traces import (
    block_reuse_fraction,
    load_azure_llm_2023,
    load_mooncake,
    load_request_csv,
)

__all__ = [
    "Request",
    "WorkloadSource",
    "block_reuse_fraction",
    "empirical_lengths",
    "fixed_lengths",
    "gamma_arrivals",
    "geometric_lengths",
    "lengths_from_array",
    "load_azure_llm_2023",
    "load_mooncake",
    "load_request_csv",
    "make_requests",
    "poisson_arrivals",
    "servegen_arrivals",
    "trace_arrivals",
]
