"""The deploy config: one TOML file whose field table drives preprod, launch and slurm.

``load_config(path)`` returns a frozen, validated :class:`DeployConfig`.  The
sections declared here are owned by the deploy layer and reject unknown keys;
top-level sections it does not own (``[model]``, ...) and sub-tables of
``[worker]`` (``[worker.train]``, ...) pass through untouched for the worker
to validate.
"""
from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

from bridge.config.hosts import HOSTS, HostModel
from bridge.config.rules import check_config
from bridge.transport.env import NAN_POLICY, PUT_MODE, PUT_RING, TIMEOUT, WAIT_MODE
from bridge.transport.naming import check_field, member_component, member_oasis_name, oasis_name
from models.settings import (
    MISSING,
    ConfigError,
    Section,
    control_char,
    from_table,
    markdown_table,
    passthrough,
    setting,
    settings_of,
)

log = logging.getLogger(__name__)

WORKER_MODES = ("train", "emulate", "spinup", "generate", "ensemble", "infer")
TO_WORKER, TO_OCEAN = "ocean_to_worker", "worker_to_ocean"
EMU_SUFFIX, INIT_SUFFIX = "_emu", "_init"
DEVICES = ("auto", "cpu", "cuda")  # [worker] device, besides cuda:N (GPU N); see bridge/worker/placement.py
GPU_DEVICE = re.compile(r"cuda:[0-9]+")


@dataclass(frozen=True, kw_only=True)
class RunSection(Section):
    section: ClassVar[str] = "run"
    backend: str = setting("mpi", "transport between the ocean and the worker", choices=("mpi", "oasis"))
    run_dir: Path = setting(Path("."), "launch folder: the worker runs here; member folders, the namcouple "
                            "and parameters.csv are written here")
    dt: float = setting(MISSING, "ocean time step in seconds (preprod writes it where the model has a "
                        "namelist variable for it)", gt=0)
    nit000: int = setting(1, "index of the first ocean time step", ge=0)
    steps: int = setting(MISSING, "number of ocean time steps of the run", ge=1)
    # the coupling settings: `oceanbridge launch` writes each into the job's environment as its $OBRIDGE_*
    # variable (bridge.transport.env.COUPLING, which holds their defaults) and into the launch record
    timeout: float = setting(TIMEOUT.default, "seconds any blocking exchange between the ocean and the worker "
                             "waits before it fails naming the field, step and peer, on both sides: the ocean's "
                             "(`rn_obr_timeout`) and the worker's receives, sends and end of definitions; the "
                             "worker drops a silent member after half of it with `[ocean] required = false` and "
                             "several members (`$OBRIDGE_TIMEOUT`)", gt=0)
    result_timeout: float | None = setting(None, "seconds the worker waits for its own model (the training "
                                           "thread) to deliver an emulated state the ocean asks for "
                                           "(default: `timeout`)", gt=0)
    ranks_timeout: float | None = setting(None, "seconds a worker rank waits for the other worker ranks in "
                                          "their collectives: torch.distributed (gradient averaging) and the "
                                          "band sampling's halo exchange (default: `timeout`)", gt=0)
    put_mode: str = setting(PUT_MODE.default, "how a put sends, on both sides: `copy` copies the data and returns "
                            "at once; `direct` sends from the array and returns once the receivers have it (MPI "
                            "backend; puts of contiguous arrays whose routes span whole rows, the others copy; "
                            "`$OBRIDGE_PUT_MODE`)", choices=PUT_MODE.choices)
    put_ring: int = setting(PUT_RING.default, "puts of a field that may be in flight (copy mode) before a put "
                            "waits for the receiver (`$OBRIDGE_RING`)", ge=1)
    wait_mode: str = setting(WAIT_MODE.default, "how blocking waits poll: `spin` without pause, `yield` yields "
                             "the core and then sleeps up to 1 ms, `auto` spins when the job's processes on the "
                             "node fit the cores their affinity allows (the worker yields while it trains; "
                             "`$OBRIDGE_WAIT`)", choices=WAIT_MODE.choices)
    nan_policy: str = setting(NAN_POLICY.default, "what a put does with NaN/Inf values: `error` refuses the state "
                              "(the receiver's get fails naming field, step and rank), `warn` sends it with a "
                              "warning, `off` does not look; a host's own choice wins (NEMO, and gyre with "
                              "`nn_ctl = 1`, turn it off: their own checks stop on NaN; "
                              "`$OBRIDGE_NAN_POLICY`)", choices=NAN_POLICY.choices)
    stop_grace: int = setting(10, "seconds the worker gets to write its checkpoint when Open MPI stops the job "
                              "(a rank died, MPI_Abort, SIGTERM to mpirun): its processes get SIGTERM this long "
                              "after the stop and SIGKILL as long again after that (`odls_base_sigkill_timeout`); "
                              "a stopped job ends about twice this after the stop", ge=1)
    mpirun: str = setting("mpirun", "MPI launcher used by `oceanbridge launch`")
    mpirun_args: tuple[str, ...] = setting((), "extra launcher options placed before the first program, "
                                           "e.g. `[\"--mca\", \"mca_base_env_list\", \"LD_LIBRARY_PATH\"]` "
                                           "(Open MPI: a `-x` there reaches only the first program)")

    @property
    def result_timeout_s(self) -> float:
        """The worker's wait for its own emulated state: ``result_timeout``, or ``timeout`` when not given."""
        return self.timeout if self.result_timeout is None else self.result_timeout

    @property
    def ranks_timeout_s(self) -> float:
        """A worker rank's wait for the other worker ranks: ``ranks_timeout``, or ``timeout`` when not given."""
        return self.timeout if self.ranks_timeout is None else self.ranks_timeout


@dataclass(frozen=True, kw_only=True)
class OceanSection(Section):
    section: ClassVar[str] = "ocean"
    model: str = setting(MISSING, "host ocean model", choices=tuple(HOSTS))
    executable: Path = setting(MISSING, "ocean executable")
    args: tuple[str, ...] = setting((), "arguments passed to the ocean executable")
    name: str = setting("", "component base name (default: the model name); members are `<name>_<k>`")
    ranks: int = setting(1, "MPI ranks of each member", ge=1)
    members: int = setting(1, "ensemble members K; each runs in its own folder with its own parameters", ge=1)
    nx: int = setting(MISSING, "global interior grid points in x (no halos)", ge=1)
    ny: int = setting(MISSING, "global interior grid points in y (no halos)", ge=1)
    namelist: Path | None = setting(None, "template of the namelist holding `&namobridge` (default: "
                                    "`<run_dir>/namelist_cfg`, `namelist_obridge` for croco); preprod "
                                    "writes a patched copy into every member folder")
    namelist_ref: Path | None = setting(None, "reference namelist linked into every member folder")
    inputs: tuple[Path, ...] = setting((), "other files (forcing, restarts, XIOS xml) linked into every "
                                       "member folder")
    member_dir: str = setting("member_{k}", "member folder name inside run_dir, `{k}` is the member "
                              "number; with one member the run_dir itself is used")
    emu_mode: str = setting("replace", "how the ocean applies an emulated state (`cn_obr_emu_mode`)",
                            choices=("replace", "increment"))
    required: bool = setting(True, "stop the ocean if the worker is absent or dies (`ln_obr_required`)")

    @property
    def host(self) -> HostModel:
        return HOSTS[self.model]

    @property
    def base_name(self) -> str:
        return self.name or self.model


@dataclass(frozen=True, kw_only=True)
class WorkerSection(Section):
    section: ClassVar[str] = "worker"
    name: str = setting("worker", "component name of the Python worker group")
    ranks: int = setting(1, "MPI ranks of the worker group", ge=1)
    modes: tuple[str, ...] = setting(("train",), "what the worker does; modes combine", choices=WORKER_MODES,
                                     subset=True)
    device: str = setting("auto", "torch device of the worker ranks: `auto` (with CUDA the GPU of the rank's "
                          "node-local rank modulo the GPU count, else the CPU), `cuda` (the same, an error "
                          "without CUDA), `cuda:N` (GPU N for every rank, e.g. `cuda:0` when each rank sees "
                          "only its own GPU) or `cpu`")
    python: str = setting("", "Python interpreter of the worker (default: the one running oceanbridge)")
    args: tuple[str, ...] = setting((), "extra arguments appended to `oceanbridge worker`")
    extra: Mapping[str, Any] = passthrough("sub-tables such as [worker.train], validated by the worker")

    def __post_init__(self) -> None:
        super().__post_init__()
        # not a `choices` list: cuda:N has one form per GPU index
        if self.device not in DEVICES and not GPU_DEVICE.fullmatch(self.device):
            allowed = ", ".join(repr(d) for d in (*DEVICES, "cuda:N"))
            raise ConfigError(f"key 'device' has invalid value {self.device!r} (allowed: {allowed})")


@dataclass(frozen=True, kw_only=True)
class FieldSpec(Section):
    section: ClassVar[str] = "fields"
    name: str = setting(MISSING, "wire name: a name of `cn_obr_send` (ocean_to_worker), or `<name>_emu` / "
                        "`<name>_init` (worker_to_ocean)")
    direction: str = setting(MISSING, "who sends", choices=(TO_WORKER, TO_OCEAN))
    nlev: int = setting(1, "vertical levels (1 for a surface field)", ge=1)
    freq: int = setting(1, "exchange period in ocean steps (`nn_obr_freq`, `nn_obr_emu_freq`); "
                        "must stay 1 for `_init` fields, which travel once at start", ge=1)
    lag: int = setting(0, "OASIS LAG in ocean steps (> 0 needs the OASIS restart file at start)", ge=0)
    seq: int = setting(1, "OASIS SEQ index", ge=1)
    units: str = setting("", "units, for the worker's netCDF output")
    description: str = setting("", "free text")
    oasis_name: str = setting("", "backend oasis: the OASIS name of the worker's end of this field, to attach "
                              "to a namcouple whose names are fixed (default `<WORKER>_<MEMBER>_<NAME>`); "
                              "`{k}` is the member number and is required with several members, e.g. "
                              "`\"E_IN_{k}\"`; letters, digits, `_`, at most 80 characters. The ocean's end "
                              "keeps `<MEMBER>_<NAME>`")

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            check_field(self.name)
        except ValueError as err:
            raise ConfigError(f"key 'name': {err}") from None
        if self.oasis_name:
            try:
                member_oasis_name(self.oasis_name, 1)
            except ValueError as err:
                raise ConfigError(f"key 'oasis_name': {err}") from None

    @property
    def base(self) -> str:
        """The state variable this field carries: 'ssh' for 'ssh', 'ssh_emu', 'ssh_init'."""
        for suffix in (EMU_SUFFIX, INIT_SUFFIX):
            if self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name

    @property
    def role(self) -> str:
        """'state' (sent by the ocean), 'emulated' or 'initial' (sent by the worker)."""
        return {EMU_SUFFIX: "emulated", INIT_SUFFIX: "initial"}.get(self.name[len(self.base):], "state")


@dataclass(frozen=True, kw_only=True)
class ParameterSpec(Section):
    section: ClassVar[str] = "parameters"
    name: str = setting(MISSING, "parameter name (a column of parameters.csv, the worker's θ)")
    block: str = setting(MISSING, "namelist group holding it, e.g. `namphys`")
    var: str = setting("", "namelist variable (default: `name`)")
    low: float = setting(MISSING, "lower bound of the uniform prior")
    high: float = setting(MISSING, "upper bound of the uniform prior")
    values: tuple[float, ...] = setting((), "the members' values instead of the `[ensemble] design` draw: one per "
                                        "member, or one for every member (e.g. a new θ* to start from a generated "
                                        "state); each within [low, high]; set for every parameter or none")
    units: str = setting("", "units")
    description: str = setting("", "free text")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.low < self.high:
            raise ConfigError(f"key 'high' must be greater than 'low', got low={self.low} high={self.high}")
        outside = [v for v in self.values if not self.low <= v <= self.high]
        if outside:
            raise ConfigError(f"key 'values': {outside} outside [low, high] = [{self.low}, {self.high}]")

    @property
    def variable(self) -> str:
        return self.var or self.name


@dataclass(frozen=True, kw_only=True)
class EnsembleSection(Section):
    section: ClassVar[str] = "ensemble"
    design: str = setting("lhs", "how θ is drawn for the K members: Latin hypercube or independent uniform",
                          choices=("lhs", "uniform"))
    seed: int = setting(0, "seed of the draw (same seed, same θ)", ge=0)


@dataclass(frozen=True, kw_only=True)
class OasisSection(Section):
    section: ClassVar[str] = "oasis"
    grid: str = setting("obrg", "grid name written in the namcouple (both sides share the grid)")
    nlogprt: int = setting(1, "OASIS log level (first number of `$NLOGPRT`)", ge=0)
    timers: int = setting(0, "OASIS timer level (second number of `$NLOGPRT`)", ge=0)


@dataclass(frozen=True, kw_only=True)
class SlurmSection(Section):
    section: ClassVar[str] = "slurm"
    layout: str = setting("multi-prog", "`multi-prog`: one job step from a generated --multi-prog file; "
                          "`hetjob`: a heterogeneous job, ocean members on CPUs and workers with "
                          "--gpus-per-task", choices=("multi-prog", "hetjob"))
    script: Path | None = setting(None, "batch script to write (default: `<run_dir>/oceanbridge.sbatch`)")
    job_name: str = setting("oceanbridge", "--job-name")
    partition: str = setting("", "--partition (empty: the cluster default)")
    account: str = setting("", "--account")
    qos: str = setting("", "--qos")
    constraint: str = setting("", "--constraint")
    time: str = setting("01:00:00", "--time")
    ocean_cpus_per_task: int = setting(1, "CPUs per ocean rank", ge=1)
    worker_cpus_per_task: int = setting(4, "CPUs per worker rank", ge=1)
    gpus_per_worker: int = setting(1, "GPUs per worker rank (0: CPU-only workers)", ge=0)
    sbatch_args: tuple[str, ...] = setting((), "extra `#SBATCH` options, one option per item, e.g. "
                                           "`[\"--exclusive\", \"--comment=two words\"]` (values are quoted "
                                           "in the script)")
    setup: tuple[str, ...] = setting((), "shell lines run before the job (module load, source a venv, "
                                     "export OASIS_DIR ...)")

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in settings_of(type(self)):  # every value lands in a line of the batch script
            value = getattr(self, f.name)
            for item in value if isinstance(value, tuple) else (value,):
                bad = control_char(str(item), allowed="\t" if f.name == "setup" else "")
                if bad:
                    raise ConfigError(f"key '{f.name}' contains {bad} in {str(item)!r}: each value must be "
                                      "one line of printable text (a newline would start a new line of the "
                                      "batch script); remove it")


@dataclass(frozen=True, kw_only=True)
class DeployConfig:
    """A whole deploy config; cross-section rules are checked on creation."""
    source: Path
    run: RunSection
    ocean: OceanSection
    worker: WorkerSection
    fields: tuple[FieldSpec, ...]
    parameters: tuple[ParameterSpec, ...] = ()
    ensemble: EnsembleSection = field(default_factory=EnsembleSection)
    oasis: OasisSection = field(default_factory=OasisSection)
    slurm: SlurmSection = field(default_factory=SlurmSection)
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        check_config(self)  # the cross-section rules have their own file

    # ---- derived quantities every module needs; one definition each ----
    @property
    def components(self) -> tuple[str, ...]:
        """Ocean component names, member 1..K."""
        k_max = self.ocean.members
        return tuple(member_component(self.ocean.base_name, k, k_max) for k in range(1, k_max + 1))

    def member_dir(self, k: int) -> Path:
        """Run folder of member ``k`` (1-based); the run_dir itself with one member."""
        if self.ocean.members == 1:
            return self.run.run_dir
        return self.run.run_dir / self.ocean.member_dir.format(k=k)

    @property
    def namelist_template(self) -> Path:
        return self.ocean.namelist or self.run.run_dir / self.ocean.host.namelist

    def member_namelist(self, k: int) -> Path:
        """The namelist member ``k`` reads its switches from (the name the model opens)."""
        return self.member_dir(k) / self.ocean.host.namelist

    def fields_with_role(self, role: str) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.role == role)

    @property
    def namcouple(self) -> Path:
        return self.run.run_dir / "namcouple"  # OASIS reads exactly this name from each cwd

    @property
    def runtime_seconds(self) -> float:
        """OASIS ``$RUNTIME``: the states of a run, kt = nit000-1 .. nitend, are at OASIS times
        0 .. steps*dt (obridge.F90) and OASIS refuses t >= $RUNTIME, so (steps + 1) * dt."""
        return (self.run.steps + 1) * self.run.dt

    def endpoints(self, component: str, fld: FieldSpec) -> tuple[str, str]:
        """(source, target) OASIS names of ``fld`` between ``component`` and the worker."""
        ocean_end = oasis_name(component, fld.name)
        worker_end = self.worker_oasis_name(component, fld)
        return (ocean_end, worker_end) if fld.direction == TO_WORKER else (worker_end, ocean_end)

    def worker_oasis_name(self, component: str, fld: FieldSpec) -> str:
        """OASIS name of the worker's end of ``fld`` towards ocean member ``component``: the field's
        ``oasis_name`` with ``{k}`` = the member number, or ``UPPER(<worker>_<component>_<field>)``."""
        if not fld.oasis_name:
            return oasis_name(self.worker.name, fld.name, peer=component)
        if component not in self.components:
            raise ValueError(f"{component!r} is not an ocean member of this config ({', '.join(self.components)})")
        return member_oasis_name(fld.oasis_name, self.components.index(component) + 1)


SECTIONS = {"run": RunSection, "ocean": OceanSection, "worker": WorkerSection, "ensemble": EnsembleSection,
            "oasis": OasisSection, "slurm": SlurmSection}
ARRAYS = {"fields": FieldSpec, "parameters": ParameterSpec}


def load_config(path: str | Path) -> DeployConfig:
    """Read and validate a deploy config; errors name the file, section and key."""
    path = Path(path).resolve()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"deploy config {path} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return config_from_dict(data, source=path)


def config_from_dict(data: Mapping[str, Any], *, source: Path) -> DeployConfig:
    """Build a config from parsed TOML; relative paths are relative to ``source``'s folder."""
    base = source.parent
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            kwargs[key] = from_table(SECTIONS[key], value, where=f"{source}: [{key}]", base_dir=base)
        elif key in ARRAYS:
            kwargs[key] = _array(ARRAYS[key], value, source, key)
        elif isinstance(value, Mapping):
            extra[key] = value  # a section owned by another module, e.g. [model]
        else:
            raise ConfigError(f"{source}: unknown top-level key '{key}' (sections: "
                              f"{', '.join([*SECTIONS, *ARRAYS])})")
    for required in ("run", "ocean", "fields"):
        if required not in kwargs:
            raise ConfigError(f"{source}: missing required section [{required}]")
    kwargs.setdefault("worker", WorkerSection())
    if extra:
        log.debug("%s: sections passed through to the worker: %s", source, ", ".join(extra))
    try:
        return DeployConfig(source=source, extra=MappingProxyType(extra), **kwargs)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def _array(cls, value: Any, source: Path, key: str) -> tuple:
    if not isinstance(value, list):
        raise ConfigError(f"{source}: [[{key}]] must be an array of tables")
    items = []
    for i, table in enumerate(value, start=1):
        label = f" '{table['name']}'" if isinstance(table, Mapping) and "name" in table else ""
        items.append(from_table(cls, table, where=f"{source}: [[{key}]] #{i}{label}", base_dir=source.parent))
    return tuple(items)


def schema_markdown() -> str:
    """The key reference of every section, as written in deploy/README.md."""
    parts = []
    for key, cls in [*SECTIONS.items(), *ARRAYS.items()]:
        title = f"[[{key}]]" if key in ARRAYS else f"[{key}]"
        parts.append(f"#### `{title}`\n\n{markdown_table(cls)}\n")
    return "\n".join(parts)
