"""Can Dr.Jit's LLVM backend really ray-trace here? Asked of a child process, never of this one.

Dr.Jit reports an LLVM backend whenever it finds *some* ``libLLVM``, but with LLVM 15/16 it
aborts the whole process (``Fatal Python error: Aborted``) inside sionna.rt's path solver, so
``drjit.has_backend`` alone cannot tell. :func:`llvm_trace_problem` therefore trusts LLVM ≥
:data:`TRUSTED_LLVM` (the version Dr.Jit 1.x is tested with) and, for any older one, runs a
tiny path solve in a subprocess: an abort there costs the child, not the caller. The verdict
is cached per process.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

__all__ = ["PROBE_TIMEOUT_S", "TRUSTED_LLVM", "llvm_trace_problem"]

#: LLVM major version trusted without a probe (`make install-rt` installs libllvm19).
TRUSTED_LLVM = 19
#: Wall-clock bound of the probe (importing sionna.rt and one small trace take ~10 s).
PROBE_TIMEOUT_S = 180.0

# One transmitter, one receiver, one bounce, few rays: the operation that aborts on LLVM 15.
_PROBE = """
import sionna.rt as rt
scene = rt.load_scene(rt.scene.simple_street_canyon)
scene.frequency = 3.5e9
arr = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
scene.tx_array = arr
scene.rx_array = arr
scene.add(rt.Transmitter(name="tx", position=[0.0, 0.0, 20.0]))
scene.add(rt.Receiver(name="rx", position=[30.0, 5.0, 1.5]))
paths = rt.PathSolver(deterministic=True)(scene, max_depth=1, samples_per_src=1000)
paths.a
print("ok")
"""


def _llvm_version() -> tuple[int, ...] | None:
    """Dr.Jit's LLVM version, or ``None`` when it has no LLVM backend."""
    import drjit as dr

    if not dr.has_backend(dr.JitBackend.LLVM):
        return None
    return tuple(int(v) for v in dr.detail.llvm_version())


@functools.cache
def _probe(version: tuple[int, ...]) -> str:
    """Run the probe trace in a child process; ``""`` if it worked, else why not."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "0"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return f"a probe ray trace did not finish within {PROBE_TIMEOUT_S:.0f} s"
    if proc.returncode == 0 and proc.stdout.strip().endswith("ok"):
        return ""
    how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"status {proc.returncode}"
    text = ".".join(map(str, version))
    return f"a probe ray trace with LLVM {text} crashed ({how})"


def llvm_trace_problem() -> str:
    """Why ray tracing on Dr.Jit's LLVM backend cannot run here, or ``""`` if it can.

    Returns:
        ``""`` for LLVM ≥ :data:`TRUSTED_LLVM` or an older LLVM whose probe trace succeeded;
        otherwise a reason naming the LLVM version found.
    """
    version = _llvm_version()
    if version is None:
        return "Dr.Jit found no libLLVM"
    if version[0] >= TRUSTED_LLVM:
        return ""
    return _probe(version)
