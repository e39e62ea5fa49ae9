"""The OASIS3-MCT transport: the same API as ``transport/mpi.py`` on pyoasis 5.

``OasisComponent`` wraps ``pyoasis.Component``; ``def_partition`` declares a
``pyoasis.BoxPartition`` (offset ``j0*nx + i0``), ``def_field`` one
``pyoasis.Var`` per field (a bundle of ``nlev`` levels) named as the namcouple
of ``oceanbridge preprod`` names it (``bridge.transport.naming.oasis_name``), or by
the name given to ``def_field(..., oasis_name=)`` (``[[fields]] oasis_name``).

Layout without copies: a field is float64 ``(nlev, nj, ni)`` C-order here, the
memory of Fortran ``a(ni, nj, nlev)``.  pyoasis wants Fortran-ordered
``(ni*nj, nlev)`` arrays, bundle last (point index i fastest, then j, as a box
partition numbers its points).  ``arr.reshape(nlev, nj*ni).T`` is exactly that
array, as a view of the same memory, so puts send the caller's array and gets
write straight into ``out``.

Time: OASIS counts seconds. ``step`` labels the host's state after step
``step``, at ``t = (step - nit000 + 1) * dt`` (the initial state, step
``nit000 - 1``, is t = 0), as the Fortran bridge counts (obridge.F90); give
``dt`` (and ``nit000``, default 1) to the component, or let ``oceanbridge
launch`` set ``$OBRIDGE_DT`` / ``$OBRIDGE_NIT000``.  ``t`` is a 32-bit integer in OASIS:
about 68 simulated years per run segment.

No receive timeout: ``Var.get`` waits inside OASIS/MPI until the data arrive;
Python cannot interrupt an MPI receive (a watchdog thread could only kill the
process), so ``timeout`` is accepted for API compatibility and not applied.
A dead peer ends the job through mpirun; a silent one hangs until the batch limit.

pyoasis is imported only when an ``OasisComponent`` is made
(``bridge.transport.oasis_env.require_pyoasis``: a missing or wrong ``pyoasis``
raises an error naming pyoasis, OASIS_DIR, PYTHONPATH and LD_LIBRARY_PATH).
"""
from __future__ import annotations

import functools
import logging
import os

import numpy as np

from ..errors import BridgeError, DefinitionError, FieldValueError
from ..partition import BoxPartition
from .mpi import MpiComponent  # no MPI at import: mpi4py is imported when an MpiComponent is made
from .naming import check_oasis_name, oasis_name

log = logging.getLogger(__name__)

NAN_POLICIES = ("error", "warn", "off")
T_MAX = 2**31 - 1  # OASIS times are Fortran default integers
# OASIS info codes (mod_oasis_parameters.F90)
SENT_CODES = frozenset({4, 6, 7, 8, 9})         # Sent, ToRest, Output, SentOut, ToRestOut
RECEIVED_CODES = frozenset({3, 10, 11, 12, 13})  # Recvd, FromRest, Input, RecvOut, FromRestOut


def oasis_seconds(step: int, nit000: int, dt: float) -> int:
    """OASIS time of the state after host step ``step``, ``(step - nit000 + 1) * dt`` seconds,
    checked against the 32-bit range."""
    t = (step - nit000 + 1) * dt
    if step < nit000 - 1 or t > T_MAX:
        raise BridgeError(f"step {step}: time ({step} - nit000 {nit000} + 1) * dt {dt} = {t} s is negative or "
                          f"overflows OASIS's 32-bit seconds (about 68 years): run long spin-ups in restart segments")
    return int(round(t))


def box_offset(box: BoxPartition) -> int:
    """Global 0-based index of a box's first point, as OASIS box partitions count (i fastest)."""
    return box.j0 * box.nx + box.i0


def to_wire(array: np.ndarray) -> np.ndarray:
    """The Fortran-ordered ``(ni*nj, nlev)`` view of a C-order ``(nlev, nj, ni)`` array (no copy)."""
    nlev, nj, ni = array.shape
    return array.reshape(nlev, nj * ni).T


def _env_number(name: str, default, kind=float):
    value = os.environ.get(name)
    return kind(value) if value else default


class OasisComponent:
    """One OASIS component: ``def_partition``, ``def_field``, ``enddef``, ``field``, ``finalize``."""

    def __init__(self, name: str, *, timeout: float | None = None, nan_policy: str = "error",
                 dt: float | None = None, nit000: int | None = None, pyoasis=None):
        real = pyoasis is None
        if real:  # (a mock must not start MPI in the caller's process, nor hook it)
            # The order matters (issue 15): MPI may already run (the script or the worker CLI joined it), and
            # importing pyoasis starts it (pyoasis imports mpi4py).  From then on an error left to the
            # interpreter's exit would wait in MPI_Finalize while the Fortran ranks spin in oasis_init_comp: the
            # job-abort hook is installed before anything that can raise, and again once the import has run.
            from ..component import abort_job_on_error_if_mpi_runs
            from .oasis_env import require_pyoasis
            abort_job_on_error_if_mpi_runs(name)
            try:
                pyoasis = require_pyoasis(name)
            finally:
                abort_job_on_error_if_mpi_runs(name)  # (the import may have started MPI, then failed)
        if nan_policy not in NAN_POLICIES:
            raise BridgeError(f"nan_policy {nan_policy!r} must be one of {NAN_POLICIES}")
        self._oasis = pyoasis
        self.name, self.nan_policy, self.timeout = name, nan_policy, timeout
        if timeout is not None:
            log.info("component '%s': OASIS has no receive timeout; timeout=%s is not applied", name, timeout)
        self.dt = _env_number("OBRIDGE_DT", None) if dt is None else float(dt)
        self.nit000 = _env_number("OBRIDGE_NIT000", 1, int) if nit000 is None else int(nit000)
        try:
            self._comp = pyoasis.Component(name, True)
        except Exception as err:  # pyoasis's OasisException, or an error of the library under it
            raise BridgeError(f"component '{name}': joining OASIS failed in pyoasis.Component (oasis_init_comp): "
                              f"{type(err).__name__}: {err}") from err
        self.local_comm = self._comp.localcomm
        self.world_rank = 0
        if real:
            from mpi4py import MPI

            from ..component import abort_job_on_error_if_mpi_runs  # (imported above already: a lookup)
            self.world_rank = MPI.COMM_WORLD.Get_rank()
            abort_job_on_error_if_mpi_runs(name)  # (a pyoasis that left MPI to oasis_init_comp)
        self._box: BoxPartition | None = None
        self._partition = None
        self._fields: dict[tuple[str, str], OasisField] = {}
        self._ended = False

    def where(self) -> str:
        return f"component '{self.name}' (world rank {self.world_rank})"

    # -- definitions ---------------------------------------------------------
    def def_time(self, nit000: int, dt: float) -> None:
        """The host's time axis: OASIS time of the state after step ``step`` is ``(step - nit000 + 1) * dt``."""
        if not dt > 0:
            raise BridgeError(f"{self.where()}: time step dt must be > 0 seconds, got {dt!r}")
        self.nit000, self.dt = int(nit000), float(dt)

    def def_partition(self, box: BoxPartition, gaps: bool = False) -> None:
        """This rank's box; ``gaps=True``: the component's ranks cover only part of the grid (land-only
        subdomains removed), so OASIS is told the global size, which it needs then (pyoasis ``global_size``,
        OASIS's ``ig_size``, as NEMO's cpl_oasis3 passes it)."""
        self._require_defining("def_partition")
        self._box = box
        size = {"global_size": box.nx * box.ny} if gaps else {}
        self._partition = self._oasis.BoxPartition(box_offset(box), box.ni, box.nj, box.nx, **size)

    def unowned_points(self, component: str) -> None:
        """The MPI backend's answer to which points ``component``'s ranks leave to no rank; OASIS does not tell its
        components each other's partitions, so: None (unknown)."""
        return None

    def def_field(self, name: str, direction: str, nlev: int = 1, peer: str = "",
                  oasis_name: str | None = None) -> OasisField:
        """Declare field ``name`` (towards ``peer``) as an OASIS variable.  Its OASIS name is
        ``UPPER(<component>_<peer>_<name>)`` as preprod's namcouple names it, or ``oasis_name`` when given
        (a namcouple with fixed names; the deploy config's ``[[fields]] oasis_name``,
        ``DeployConfig.worker_oasis_name``)."""
        self._require_defining("def_field")
        if self._partition is None:
            raise BridgeError(f"{self.where()}: field '{name}': def_field before def_partition "
                              "(OASIS declares variables on a partition)")
        if direction not in ("in", "out"):
            raise BridgeError(f"field '{name}': direction {direction!r} must be 'in' or 'out'")
        if not isinstance(nlev, int) or nlev < 1:
            raise BridgeError(f"field '{name}': nlev must be a positive integer, got {nlev!r}")
        if (name, peer) in self._fields:
            raise BridgeError(f"field '{name}' (peer '{peer}') is defined twice on {self.where()}")
        if oasis_name is not None:
            try:
                check_oasis_name(oasis_name)
            except ValueError as err:
                raise DefinitionError(f"field '{name}' (peer '{peer}') of {self.where()}: {err}") from None
        field = OasisField(self, name, direction, nlev, peer, oasis_name)
        self._fields[(name, peer)] = field
        return field

    def enddef(self) -> None:
        self._require_defining("enddef")
        if self._box is None:
            raise BridgeError(f"{self.where()}: enddef before def_partition")
        if self.dt is None:
            raise BridgeError(f"{self.where()}: the OASIS backend needs the model time step: pass dt= (and "
                              "nit000=) to the component, call def_time(nit000, dt), or set $OBRIDGE_DT")
        self._comp.enddef()
        self._ended = True

    def _require_defining(self, what: str) -> None:
        if self._ended:
            raise BridgeError(f"{self.where()}: {what} after enddef")

    # -- run time ------------------------------------------------------------
    field = MpiComponent.field  # the same lookup and message: fields are keyed (name, peer) in both

    def _check_schedule(self, current: OasisField, step: int, tsec: int) -> None:
        """OASIS aborts ('coupling skipped at earlier time, potential deadlock') when a field acts at t
        while another missed a coupling time before t; say so first, naming the field (as obr_oasis.F90)."""
        if current.period is None or tsec % current.period:
            return
        for other in self._fields.values():
            if other is current or other.period is None:
                continue
            missed = (tsec > other.last + other.period if other.last is not None
                      else current.last is not None and tsec >= other.period)
            if missed:
                last = "never" if other.last is None else f"t = {other.last} s"
                raise BridgeError(
                    f"field '{other.name}' (OASIS '{other.wire}', period {other.period} s) of {self.where()} missed "
                    f"a coupling time before t = {tsec} s, where field '{current.name}' is exchanged at step {step} "
                    f"(its last exchange: {last}). OASIS needs every field put/got at every coupling time from "
                    "t = 0 (the initial state, step nit000 - 1) on, and aborts otherwise: a field used only later "
                    "(an emulated state) is also exchanged at step nit000 - 1 (the worker: Schedule.discards_emulated)")

    def finalize(self) -> None:
        """Leave OASIS (``terminate``; OASIS ends MPI if it started it)."""
        self._ended = False
        self._comp.terminate()


class OasisField:
    """A field of an OASIS component: ``put`` (direction out) or ``get`` (direction in).

    Arrays are float64 ``(nlev, nj, ni)`` C-order; ``(nj, ni)`` is accepted when nlev is 1."""

    def __init__(self, component: OasisComponent, name: str, direction: str, nlev: int, peer: str,
                 wire: str | None = None):
        self.component, self.name, self.direction, self.nlev, self.peer = component, name, direction, nlev, peer
        self.wire = wire or oasis_name(component.name, name, peer=peer or None)
        other = next((f for f in component._fields.values() if f.wire == self.wire), None)
        if other is not None:
            raise DefinitionError(f"field '{name}' (peer '{peer}') of {component.where()}: its OASIS name "
                                  f"'{self.wire}' is already that of field '{other.name}' (peer '{other.peer}'); "
                                  "give each field its own oasis_name")
        self.rejected = 0  # puts refused for NaN/Inf
        self.last_info = None
        self.last: int | None = None  # last OASIS time at which it was exchanged
        oasis = component._oasis
        self._var = oasis.Var(self.wire, component._partition, oasis.OASIS.IN if direction == "in"
                              else oasis.OASIS.OUT, bundle_size=nlev)
        var_id = self._var.get_id() if hasattr(self._var, "get_id") else self._var._id
        if var_id < 0:
            raise DefinitionError(f"field '{name}' of {component.where()}: its OASIS name '{self.wire}' is not in "
                                  f"the namcouple of {os.getcwd()}; re-run 'oceanbridge preprod CONFIG' or add "
                                  "the entry")

    @property
    def shape(self) -> tuple[int, int, int]:
        box = self.component._box
        assert box is not None  # fields are declared (def_field) after def_partition, which sets it
        return (self.nlev, box.nj, box.ni)

    @functools.cached_property
    def period(self) -> int | None:
        """Coupling period in seconds from the namcouple (pyoasis ``Var.cpl_freqs``, known after enddef),
        None if unknown."""
        freqs = getattr(self._var, "cpl_freqs", None)
        return int(freqs[0]) if freqs is not None and len(freqs) and freqs[0] > 0 else None

    def _seconds(self, step: int) -> int:
        dt = self.component.dt
        assert dt is not None  # put/get run after enddef, which requires it
        try:
            tsec = oasis_seconds(step, self.component.nit000, dt)
        except BridgeError as err:
            raise BridgeError(f"field '{self.name}' of {self.component.where()}: {err}") from None
        self.component._check_schedule(self, step, tsec)
        return tsec

    def _note(self, info, tsec: int) -> None:
        """Remember OASIS's answer; an exchange that happened sets ``last``."""
        self.last_info = info
        if info in SENT_CODES or info in RECEIVED_CODES or (info is None and self.period and tsec % self.period == 0):
            self.last = tsec

    def _check_ready(self, what: str, direction: str) -> None:
        if not self.component._ended:
            raise BridgeError(f"field '{self.name}': {what} before enddef")
        if self.direction != direction:
            raise BridgeError(f"field '{self.name}' of {self.component.where()} is direction "
                              f"'{self.direction}'; {what} is not allowed on it")

    def put(self, step: int, array: np.ndarray) -> None:
        """Hand ``array`` to OASIS for ``step``; OASIS sends it at the namcouple's coupling times."""
        self._check_ready("put", "out")
        data = np.asarray(array, dtype=np.float64)
        if data.ndim == 2 and self.nlev == 1:
            data = data[np.newaxis]
        if data.shape != self.shape:
            raise BridgeError(f"field '{self.name}' of {self.component.where()}: array shape {np.shape(array)} "
                              f"does not match the partition, expected {self.shape} (nlev, nj, ni)")
        if not self._values_ok(step, data):
            return
        wire = self.component._oasis.asarray(to_wire(np.ascontiguousarray(data)))
        tsec = self._seconds(step)
        self._note(self._var.put(tsec, wire), tsec)

    def _values_ok(self, step: int, data: np.ndarray) -> bool:
        policy = self.component.nan_policy
        bad = 0 if policy == "off" or np.isfinite(data.sum()) else int(np.count_nonzero(~np.isfinite(data)))
        if bad == 0:  # (a sum that overflowed on finite values counts none)
            return True
        self.rejected += 1
        msg = f"field '{self.name}' of {self.component.where()}: put at step {step} holds {bad} NaN/Inf value(s)"
        if policy == "error":
            raise FieldValueError(msg)
        log.warning("%s; sent anyway (nan_policy='warn')", msg)
        return True

    def get(self, step: int, out: np.ndarray | None = None, timeout: float | None = None) -> np.ndarray:
        """Receive the field for ``step`` into ``out`` (allocated if None). Waits without a timeout
        (OASIS has none: ``timeout`` is accepted for the MPI backend's signature and ignored); raises if
        OASIS says ``step`` is not a coupling time of this field."""
        self._check_ready("get", "in")
        if out is None:
            out = np.empty(self.shape, dtype=np.float64)
        elif out.shape != self.shape or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise BridgeError(f"field '{self.name}': get needs a C-contiguous float64 array of shape {self.shape}")
        tsec = self._seconds(step)
        buf = self.component._oasis.asarray(to_wire(out))
        info = self._var.get(tsec, buf)
        if not np.shares_memory(buf, out):  # asarray had to copy: write back
            to_wire(out)[...] = buf
        self._note(info, tsec)
        if info is not None and info not in RECEIVED_CODES:
            raise BridgeError(f"field '{self.name}' ({self.wire}) of {self.component.where()}: get at step {step} "
                              f"(t = {tsec} s) received nothing (OASIS info {info}): not a coupling time of "
                              "this field in the namcouple; call get at its period")
        return out
