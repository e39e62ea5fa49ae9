"""The MPI transport: components found by name in MPI_COMM_WORLD, fields routed
point to point between the two sides' box decompositions.

The sequence of collectives here is mirrored call for call by
``bridge/fortran/obr_mpi.F90``; keep the two in step:

1. init:   Allgather(component name, 64 chars) on MPI_COMM_WORLD;
           Comm_split(world, color=first rank of that name, key=rank);
           Comm_dup(world) for the bridge's own traffic;
           Comm_split_type(world, SHARED, key=rank), Allreduce(BOR) of the
           affinity masks on it, then Comm_free (the wait mode, wait.configure).
2. enddef: Allgather(record length), Allgatherv(records) on the bridge comm;
           on a definition error, Barrier (so every side has printed) first.

Wire protocol (handshake.PROTOCOL_VERSION, checked at end of definitions):
each put sends, per route, its points as chunks of whole rows of one level
(handshake.chunks, at most handshake.CHUNK points) and then a trailer of 4
int64 (step, tag, NaN/Inf values in the put, rejected 0/1), all with the
coupling index as tag; MPI's non-overtaking order keeps chunks and trailer
paired. In the ``copy`` put mode (the default, as the Fortran side) puts are
non-blocking and copy the data: the sender copies and checks chunk k while MPI
moves chunk k-1, and a ring of ``RING`` buffers per field ($OBRIDGE_RING, set from
``[run] put_ring`` by ``oceanbridge launch``) lets it run that many puts ahead of a busy
receiver. In the ``direct`` mode ($OBRIDGE_PUT_MODE from ``[run] put_mode``, or ``put_mode``)
a put whose routes span whole rows of a C-contiguous array sends straight from it, checking each chunk
while it is sent, and returns once the receivers have it (no copy; the sender
waits for them).
"""
from __future__ import annotations

import logging
import math
import os
import sys

import numpy as np

from .. import handshake
from ..errors import BridgeError, BridgeTimeout, DefinitionError, FieldValueError, ProtocolError
from ..partition import GAP_FILL, BoxPartition, unowned
from ..routing import Route, routes
from . import wait
from .env import NAN_POLICY, PUT_MODE, PUT_RING, TIMEOUT, env_word
from .wait import wait_all

log = logging.getLogger(__name__)

NAN_POLICIES = NAN_POLICY.choices
PUT_MODES = PUT_MODE.choices

# The $OBRIDGE_* defaults below are those of env.py's table, which the deploy config's [run] keys
# (timeout, put_ring, put_mode, nan_policy, wait_mode) declare too; `oceanbridge launch` sets them all.


def _default_timeout() -> float:
    """$OBRIDGE_TIMEOUT ([run] timeout, default env.TIMEOUT), as the Fortran side; a bad value is named, not
    guessed."""
    text = os.environ.get(TIMEOUT.var, TIMEOUT.text(TIMEOUT.default))
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not (math.isfinite(seconds) and seconds > 0):
        raise BridgeError(f"{TIMEOUT.var}={text!r}: must be a number of seconds > 0")
    return seconds


def _ring_depth() -> int:
    """$OBRIDGE_RING ([run] put_ring, default env.PUT_RING): puts a field may have in flight; a bad value is
    named, not guessed."""
    text = os.environ.get(PUT_RING.var, PUT_RING.text(PUT_RING.default))
    if not text.strip().isdigit() or int(text) < 1:
        raise BridgeError(f"{PUT_RING.var}={text!r}: the put ring depth must be a whole number >= 1")
    return int(text)


def _default_put_mode() -> str:
    """$OBRIDGE_PUT_MODE ([run] put_mode, default env.PUT_MODE), as the Fortran side; a bad value is named."""
    return env_word(PUT_MODE, "put mode")


def _default_nan_policy() -> str:
    """$OBRIDGE_NAN_POLICY ([run] nan_policy, default env.NAN_POLICY), as the Fortran side; a bad value is
    named."""
    return env_word(NAN_POLICY, "NaN policy")


RING = _ring_depth()
DEFAULT_PUT_MODE = _default_put_mode()
DEFAULT_NAN_POLICY = _default_nan_policy()
STOP_BARRIER_LIMIT = 5.0  # seconds a rank waits for the others before stopping on a protocol mismatch
DEFAULT_TIMEOUT = _default_timeout()
wait.wait_mode()  # a bad $OBRIDGE_WAIT is named at import, as the ones above


def _count_bad(values: np.ndarray) -> int:
    """NaN/Inf values in ``values``: one summing pass (NaN/Inf propagate into the sum), the exact count only when
    the sum is not finite."""
    if np.isfinite(values.sum()):
        return 0
    return int(np.count_nonzero(~np.isfinite(values)))  # 0 when the sum overflowed on finite values


def _mpi():
    from mpi4py import MPI
    return MPI


def _abort_job_on_uncaught_exception(component: str, rank: int) -> None:
    """Make an uncaught exception abort the whole MPMD job.

    Without this, the interpreter's exit calls MPI_Finalize, which waits for
    the other ranks forever: a coupled run would hang silently."""
    previous = sys.excepthook
    if getattr(previous, "_oceanbridge", False):
        return
    sys.excepthook = _AbortingHook(component, rank, previous)


class _AbortingHook:
    """``sys.excepthook`` that prints the error (a BridgeError once, naming the component) and aborts the job;
    ``_oceanbridge`` marks it installed."""

    _oceanbridge = True

    def __init__(self, component: str, rank: int, previous) -> None:
        self.component, self.rank, self.previous = component, rank, previous

    def __call__(self, exc_type, exc, tb) -> None:
        if isinstance(exc, BridgeError):
            if not exc.reported:
                print(f"oceanbridge ERROR (component '{self.component}', world rank {self.rank}): {exc}",
                      file=sys.stderr, flush=True)
        else:
            self.previous(exc_type, exc, tb)
        sys.stderr.flush()
        _mpi().COMM_WORLD.Abort(1)


class MpiComponent:
    """One component (a set of ranks sharing a name) of the coupled MPMD job."""

    def __init__(self, name: str, *, timeout: float = DEFAULT_TIMEOUT, nan_policy: str = DEFAULT_NAN_POLICY,
                 put_mode: str = DEFAULT_PUT_MODE, world=None):
        MPI = _mpi()
        world = MPI.COMM_WORLD if world is None else world
        self.world_rank = world.Get_rank()
        # MPI runs from here: an error below must abort the job, not sit in MPI_Finalize (the others wait in init)
        _abort_job_on_uncaught_exception(name, self.world_rank)
        if not name or len(name) > handshake.NAME_LEN or " " in name:
            raise BridgeError(f"component name {name!r} must be 1..{handshake.NAME_LEN} characters without spaces")
        if nan_policy not in NAN_POLICIES:
            raise BridgeError(f"nan_policy {nan_policy!r} must be one of {NAN_POLICIES}")
        if put_mode not in PUT_MODES:
            raise BridgeError(f"put_mode {put_mode!r} must be one of {PUT_MODES}")
        self.name, self.timeout, self.nan_policy, self.put_mode = name, float(timeout), nan_policy, put_mode
        mine = np.frombuffer(name.ljust(handshake.NAME_LEN).encode("ascii"), dtype="S1").copy()
        names = np.empty(handshake.NAME_LEN * world.Get_size(), dtype="S1")
        req = world.Iallgather([mine, MPI.CHARACTER], [names, MPI.CHARACTER])
        wait_all([req], self.timeout, lambda _: (
            f"component '{name}' (world rank {self.world_rank}): init waited for the other ranks of the job; "
            f"did every process of the MPMD launch start and call init?"))
        self.world_names = [names[k:k + handshake.NAME_LEN].tobytes().decode().strip()
                            for k in range(0, names.size, handshake.NAME_LEN)]
        color = self.world_names.index(name)
        self.local_comm = world.Split(color, self.world_rank)
        self._comm = world.Dup()
        self.spin_waits = wait.configure(world)
        self._box: BoxPartition | None = None
        self._gaps = False
        self._defs: list[handshake.RankDefs] = []
        self._fields: dict[tuple[str, str], MpiField] = {}
        self._ended = False

    # -- definitions ---------------------------------------------------------
    def def_partition(self, box: BoxPartition, gaps: bool = False) -> None:
        """This rank's box of the global grid.  ``gaps=True`` (on every rank of the component) declares that its
        ranks cover only part of the grid, as an ocean that removed its land-only subdomains: the points no rank
        owns are land; a peer receives GAP_FILL there, and what a peer puts there is dropped."""
        self._require_defining("def_partition")
        self._box, self._gaps = box, bool(gaps)

    def def_field(self, name: str, direction: str, nlev: int = 1, peer: str = "") -> MpiField:
        self._require_defining("def_field")
        if direction not in handshake.DIRECTIONS:
            raise BridgeError(f"field '{name}': direction {direction!r} must be 'in' or 'out'")
        if not isinstance(nlev, int) or nlev < 1:
            raise BridgeError(f"field '{name}': nlev must be a positive integer, got {nlev!r}")
        if (name, peer) in self._fields:
            raise BridgeError(f"field '{name}' (peer '{peer}') is defined twice on component '{self.name}'")
        fdef = handshake.FieldDef(name, handshake.DIRECTIONS[direction], nlev, peer)
        field = MpiField(self, fdef)
        self._fields[(name, peer)] = field
        return field

    def enddef(self) -> None:
        self._require_defining("enddef")
        if self._box is None:
            raise BridgeError(f"component '{self.name}' rank {self.world_rank}: enddef before def_partition")
        defs = self._gather_definitions(self._box)
        try:
            couplings = handshake.validate(defs)
        except DefinitionError as err:
            if self.local_comm.Get_rank() == 0:  # one message per component, as the Fortran side
                print(f"oceanbridge ERROR (component '{self.name}', world rank {self.world_rank}): "
                      f"end of definitions: {err}", file=sys.stderr, flush=True)
            err.reported = True
            self._barrier_before_stopping(isinstance(err, ProtocolError))
            raise
        for field in self._fields.values():
            field._connect(couplings, defs)
        self._defs = defs
        self._ended = True

    def unowned_points(self, component: str) -> np.ndarray | None:
        """After enddef: the points of the global grid that no rank of ``component`` owns, a boolean (ny, nx)
        array, or None when its ranks cover the grid (it declared no gaps, or its gaps are empty)."""
        boxes = [d.box for d in self._defs if d.component == component]
        if not boxes:
            raise BridgeError(f"component '{self.name}': no component '{component}' in this job")
        whole = BoxPartition.whole(boxes[0].nx, boxes[0].ny)
        return unowned(whole, boxes)

    def _barrier_before_stopping(self, maybe_old_peer: bool) -> None:
        """Let every side print its message before anyone aborts; bounded, since a peer of an
        older protocol (maybe_old_peer) found nothing wrong and never joins (as obr_mpi.F90)."""
        try:
            barrier = self._bridge_comm("end of definitions").Ibarrier()
            wait_all([barrier], min(self.timeout, STOP_BARRIER_LIMIT) if maybe_old_peer else self.timeout,
                     lambda _: "end of definitions: the other side did not stop with this one")
        except BridgeTimeout:
            pass

    def _gather_definitions(self, box: BoxPartition) -> list[handshake.RankDefs]:
        MPI = _mpi()
        comm = self._bridge_comm("enddef")
        mine = handshake.encode(self.name, box, [f.fdef for f in self._fields.values()], gaps=self._gaps)
        size = comm.Get_size()
        counts = np.empty(size, dtype=np.int32)
        mylen = np.array([len(mine)], dtype=np.int32)
        self._wait_collective(comm.Iallgather([mylen, MPI.INTEGER], [counts, MPI.INTEGER]))
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        allrecs = np.empty(int(counts.sum()), dtype="S1")
        self._wait_collective(comm.Iallgatherv([np.frombuffer(mine, dtype="S1"), MPI.CHARACTER],
                                               [allrecs, (counts, displs), MPI.CHARACTER]))
        raw = allrecs.tobytes()
        return [handshake.decode(r, raw[displs[r]:displs[r] + counts[r]]) for r in range(size)]

    def _wait_collective(self, req) -> None:
        wait_all([req], self.timeout, lambda _: (
            f"component '{self.name}' (world rank {self.world_rank}): end of definitions waited for the other "
            f"components; did every process of the MPMD launch reach enddef? (a model built with an older "
            f"oceanbridge also stops here: rerun 'oceanbridge install' and rebuild it)"))

    def _require_defining(self, what: str) -> None:
        if self._ended:
            raise BridgeError(f"component '{self.name}': {what} after enddef")

    def _defined_box(self, what: str) -> BoxPartition:
        """The partition (def_partition), which ``what`` needs."""
        if self._box is None:
            raise BridgeError(f"component '{self.name}' rank {self.world_rank}: {what} before def_partition")
        return self._box

    def _bridge_comm(self, what: str):
        """The bridge's communicator, which ``what`` needs; finalize frees it."""
        if self._comm is None:
            raise BridgeError(f"component '{self.name}' rank {self.world_rank}: {what} after finalize")
        return self._comm

    # -- run time ------------------------------------------------------------
    def field(self, name: str, peer: str = "") -> MpiField:
        try:
            return self._fields[(name, peer)]
        except KeyError:
            known = ", ".join(f"'{n}'" + (f" (peer '{p}')" if p else "") for n, p in self._fields)
            raise BridgeError(f"component '{self.name}': unknown field '{name}'"
                              + (f" with peer '{peer}'" if peer else "") + f"; defined: {known}") from None

    def finalize(self) -> None:
        """Complete outstanding sends (bounded by the timeout), then free the bridge's
        communicator. ``local_comm`` stays valid: the host owns it from init on."""
        errors = []
        for field in self._fields.values():
            try:
                field._drain()
            except BridgeTimeout as err:
                errors.append(str(err))
        if self._comm is not None:
            self._comm.Free()
            self._comm = None
        if errors:
            raise BridgeTimeout("; ".join(errors))


class MpiField:
    """A field of one component: ``put`` (direction out) or ``get`` (direction in).

    Arrays are float64 ``(nlev, nj, ni)`` C-order, the memory of Fortran
    ``a(ni, nj, nlev)``; a 2-D ``(nj, ni)`` array is accepted when nlev is 1."""

    def __init__(self, component: MpiComponent, fdef: handshake.FieldDef):
        self.component, self.fdef = component, fdef
        self.name, self.nlev, self.peer = fdef.name, fdef.nlev, fdef.peer
        self.direction = handshake.DIRECTION_NAMES[fdef.direction]
        self.routes: list[Route] = []
        self._unowned: np.ndarray | None = None
        self.peer_component = ""
        self.tag = -1
        self.rejected = 0  # puts refused for NaN/Inf
        self._ring: list[tuple] = [() for _ in range(RING)]
        self._ring_steps: list[int | None] = [None] * RING
        self._next = 0
        self._stage: dict[tuple, np.ndarray] = {}  # buffers kept between calls, see _staging

    @property
    def shape(self) -> tuple[int, int, int]:
        box = self.component._defined_box(f"the shape of field '{self.name}'")
        return (self.nlev, box.nj, box.ni)

    def _connect(self, couplings: list[handshake.Coupling], defs: list[handshake.RankDefs]) -> None:
        me = self.component.name
        side = "src" if self.fdef.direction == handshake.OUT else "dst"
        coupling = next(c for c in couplings if getattr(c, side) == me and getattr(c, side + "_field") == self.fdef)
        self.tag = coupling.tag
        self.peer_component = coupling.dst if side == "src" else coupling.src
        peer_boxes = {d.rank: d.box for d in defs if d.component == self.peer_component}
        box = self.component._defined_box("enddef")
        self.routes = routes(box, peer_boxes)
        self._slices = [box.local_slices(r.box) for r in self.routes]
        self._chunks = [handshake.chunks(r.box, self.nlev) for r in self.routes]
        # points of this rank that no sender owns (a peer that declared gaps): set to GAP_FILL at every get
        self._unowned = unowned(box, [r.box for r in self.routes]) if side == "dst" else None

    def _chunk_index(self, k: int, chunk: handshake.Chunk) -> tuple:
        """Where chunk ``chunk`` of route ``k`` lies in the (nlev, nj, ni) local array."""
        js, is_ = self._slices[k]
        return chunk.lev, slice(js.start + chunk.row0, js.start + chunk.row0 + chunk.nrows), is_

    def _sending_order(self):
        """(route, chunk) pairs, routes taking turns, so that every receiver is busy from the start."""
        longest = max((len(c) for c in self._chunks), default=0)
        return [(k, cs[n]) for n in range(longest) for k, cs in enumerate(self._chunks) if n < len(cs)]

    # -- put -----------------------------------------------------------------
    def put(self, step: int, array: np.ndarray) -> None:
        """Send ``array`` for ``step``. Copy mode (the default): returns once it is copied (non-blocking);
        each chunk is copied, checked for NaN/Inf and posted before the next is touched. Direct mode,
        when every route spans whole rows of a C-contiguous array: each chunk is posted from ``array``
        itself and checked while it is sent; returns once the receivers have it (waiting at most the
        timeout).

        Under nan_policy 'error' a put holding NaN/Inf still completes its message (flagged rejected
        in the trailer, so the receiver's get raises FieldValueError and its array is undefined),
        then raises FieldValueError here."""
        self._check_ready("put", handshake.OUT)
        data = self._as_field_array(array)
        direct = self.component.put_mode == "direct" and self._runs_of(data)
        MPI = _mpi()
        slot = self._next
        self._wait_slot(slot)
        comm, reqs, req_route = self.component._bridge_comm(f"field '{self.name}': put"), [], []
        check = self.component.nan_policy != "off"
        packed = [] if direct else [self._staging(("put", slot), k, (r.box.size * self.nlev,))
                                      for k, r in enumerate(self.routes)]
        nbad = 0
        for k, chunk in self._sending_order():
            view = data[self._chunk_index(k, chunk)]
            if direct:  # a run of the caller's array: sent as it is, read while MPI moves it
                reqs.append(comm.Isend([view, MPI.REAL8], dest=self.routes[k].peer, tag=self.tag))
                nbad += _count_bad(view) if check else 0
            else:  # the caller may reuse its array at once; the slot is free again (_wait_slot)
                piece = packed[k][chunk.offset:chunk.offset + chunk.nrows * self.routes[k].box.ni]
                np.copyto(piece.reshape(chunk.nrows, -1), view)
                nbad += _count_bad(piece) if check else 0  # while the chunk is in cache
                reqs.append(comm.Isend([piece, MPI.REAL8], dest=self.routes[k].peer, tag=self.tag))
            req_route.append(k)
        rejected = nbad > 0 and self.component.nan_policy == "error"
        trailer = np.array([step, self.tag, nbad, int(rejected)], dtype=np.int64)
        for k, route in enumerate(self.routes):
            reqs.append(comm.Isend([trailer, MPI.INTEGER8], dest=route.peer, tag=self.tag))
            req_route.append(k)
        self._ring[slot] = (reqs, (packed, trailer, data if direct else None), req_route)  # alive until sent
        self._ring_steps[slot] = step
        self._next = (slot + 1) % RING
        if direct:
            self._wait_slot(slot)  # the caller may change its array once put returns
        if nbad:
            self._nan_verdict(step, nbad)

    def _runs_of(self, data: np.ndarray) -> bool:
        """True when every chunk is one run of ``data``: C-contiguous, and every route spans whole rows."""
        ni = self.component._defined_box("put").ni
        return data.flags.c_contiguous and all(r.box.ni == ni for r in self.routes)

    def _as_field_array(self, array) -> np.ndarray:
        data = np.asarray(array, dtype=np.float64)
        if data.ndim == 2 and self.nlev == 1:
            data = data[np.newaxis]
        if data.shape != self.shape:
            raise BridgeError(f"field '{self.name}' of component '{self.component.name}' (rank "
                              f"{self.component.world_rank}): array shape {np.shape(array)} does not match "
                              f"the partition, expected {self.shape} (nlev, nj, ni)")
        return data

    def _nan_verdict(self, step: int, nbad: int) -> None:
        """Apply the NaN policy to a put (already sent) that held nbad NaN/Inf values."""
        msg = (f"field '{self.name}' of component '{self.component.name}' (rank {self.component.world_rank}): "
               f"put at step {step} holds {nbad} NaN/Inf value(s)")
        if self.component.nan_policy == "error":
            self.rejected += 1
            raise FieldValueError(msg + "; sent flagged as rejected, the receiver's get fails")
        log.warning("%s; sent anyway (nan_policy='warn')", msg)

    def _wait_slot(self, slot: int) -> None:
        pending = self._ring[slot]
        if not pending:
            return
        reqs, _buffers, req_route = pending
        old_step = self._ring_steps[slot]
        wait_all(reqs, self.component.timeout, lambda idx: (
            f"field '{self.name}' of component '{self.component.name}' (rank {self.component.world_rank}): "
            f"the send of step {old_step} to rank(s) {self._route_ranks(idx, req_route)} of component "
            f"'{self.peer_component}' did not complete; is the peer alive and calling get?"))
        self._ring[slot] = ()

    def _drain(self) -> None:
        for slot in range(RING):
            self._wait_slot(slot)

    # -- get -----------------------------------------------------------------
    def get(self, step: int, out: np.ndarray | None = None, timeout: float | None = None) -> np.ndarray:
        """Receive the field for ``step`` into ``out`` (allocated if None), waiting
        at most ``timeout`` s (default: the component's). Raises FieldValueError, naming the
        sending rank and its count of NaN/Inf values, when the put was rejected
        by the sender's NaN policy 'error'; ``out`` is then undefined."""
        self._check_ready("get", handshake.IN)
        MPI = _mpi()
        if out is None:
            out = np.empty(self.shape, dtype=np.float64)
        elif out.shape != self.shape or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise BridgeError(f"field '{self.name}': get needs a C-contiguous float64 array of shape {self.shape}")
        comm = self.component._bridge_comm(f"field '{self.name}': get")
        trailers = np.zeros((len(self.routes), handshake.TRAILER), dtype=np.int64)
        reqs, staged, req_route = [], [], []
        for k, route in enumerate(self.routes):
            stage = None
            for chunk in self._chunks[k]:
                target = out[self._chunk_index(k, chunk)]
                if not target.flags.c_contiguous:  # receive straight into the array where the chunk is contiguous
                    stage = self._staging("get", k, (route.box.size * self.nlev,)) if stage is None else stage
                    buf = stage[chunk.offset:chunk.offset + target.size]
                    staged.append((target, buf.reshape(target.shape)))
                    target = buf
                reqs.append(comm.Irecv([target, MPI.REAL8], source=route.peer, tag=self.tag))
            reqs.append(comm.Irecv([trailers[k], MPI.INTEGER8], source=route.peer, tag=self.tag))
            req_route += [k] * (1 + len(self._chunks[k]))
        wait_all(reqs, self.component.timeout if timeout is None else timeout, lambda idx: (
            f"field '{self.name}' of component '{self.component.name}' (rank {self.component.world_rank}): "
            f"get at step {step} received nothing from world rank(s) {self._route_ranks(idx, req_route)} of component "
            f"'{self.peer_component}'; is the peer alive and calling put?"))
        for target, buf in staged:
            target[...] = buf
        if self._unowned is not None:
            out[:, self._unowned] = GAP_FILL
        for k, route in enumerate(self.routes):
            self._check_trailer(step, route, trailers[k])
        return out

    def _check_trailer(self, step: int, route: Route, trailer: np.ndarray) -> None:
        sent_step, _tag, nbad, rejected = (int(v) for v in trailer)
        where = (f"field '{self.name}' of component '{self.component.name}' (rank {self.component.world_rank}): "
                 f"get at step {step}")
        if sent_step != step:
            raise BridgeError(f"{where} received step {sent_step} from rank {route.peer} of "
                              f"'{self.peer_component}'; the two sides call put/get at different steps")
        if rejected:
            raise FieldValueError(f"{where}: the put of world rank {route.peer} of component '{self.peer_component}' "
                                  f"held {nbad} NaN/Inf value(s) and was rejected (its NaN policy is error); "
                                  f"the received array is undefined")

    def _staging(self, use, piece: int, shape: tuple) -> np.ndarray:
        """A buffer kept from call to call (no fresh pages to fault in at every step), by use
        (a get's route, or a put's ring slot) and piece."""
        buf = self._stage.get((use, piece))
        if buf is None:
            buf = self._stage[(use, piece)] = np.empty(shape)
        return buf

    def _route_ranks(self, request_indices: list[int], req_route: list[int]) -> list[int]:
        return sorted({self.routes[req_route[k]].peer for k in request_indices})

    def _check_ready(self, what: str, direction: int) -> None:
        if not self.component._ended:
            raise BridgeError(f"field '{self.name}': {what} before enddef")
        if self.fdef.direction != direction:
            raise BridgeError(f"field '{self.name}' of component '{self.component.name}' is direction "
                              f"'{self.direction}'; {what} is not allowed on it")
