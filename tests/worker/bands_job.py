"""Run under ``mpirun -n M``: every rank samples its j-band of one grid with the halo exchange
(models/bands.py) and compares it with the 1-rank sample of the same tiling, computed on the same
rank from the same seed. Prints one ``RESULT`` line per rank and per surrogate variant; exits 1 on a
mismatch. Used by tests/worker/test_worker_bands_mpi.py."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bridge.partition import decompose  # noqa: E402
from bridge.worker.ddp import DataParallel  # noqa: E402
from models.bands import BandLayout, RankBand  # noqa: E402
from models.data import Batch, DataSpec, grid_position  # noqa: E402
from models.sampling import SamplerConfig  # noqa: E402
from models.surrogate import Surrogate, SurrogateConfig  # noqa: E402

NY, NX, TILE = 40, 16, (16, 16)  # tiles 0, 12, 24: the halos reach a whole tile into the next band
VARIANTS = {  # name: (objective, spectral whitening exponent, sampler)
    "diffusion": ("diffusion", 0.0, SamplerConfig(num_steps=4, S_churn=5.0)),
    "whitened": ("diffusion", 0.5, SamplerConfig(num_steps=3, S_churn=5.0)),  # with whiten_state
    "mse": ("mse", 0.0, None),
}


def surrogate(objective: str, whitening: float) -> Surrogate:
    """A small emulator with seeded weights and statistics fitted to a seeded batch (the same on every rank).
    Every weight is perturbed: the output layer starts at zero, and a zero network is a pointwise denoiser,
    which would hide a missing halo."""
    torch.manual_seed(0)
    spec = DataSpec(("ssh", "u"), ("tau",), NY, NX)
    config = SurrogateConfig(spec, objective=objective, use_position=True, model_channels=8, channel_mult=(1, 2),
                             spectral_whitening=whitening, whiten_state=whitening > 0)
    model = Surrogate(config).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    state = torch.randn((4, 2, NY, NX), generator=gen)
    model.observe(Batch(target=state + 0.1 * torch.randn(state.shape, generator=gen), state=state,
                        theta=torch.randn((4, 1), generator=gen)))
    return model


def conditions(rows: slice) -> Batch:
    """Two conditions (state, θ, mask with a land corner, position), cut to ``rows``."""
    gen = torch.Generator().manual_seed(2)
    state = torch.randn((2, 2, NY, NX), generator=gen)
    mask = torch.ones((1, 1, NY, NX))
    mask[..., :5, :3] = 0
    pos = grid_position(0, 0, NX, NY, NX, NY)[None]
    return Batch(target=None, state=state[..., rows, :], theta=torch.randn((2, 1), generator=gen),
                 mask=mask[..., rows, :], pos=pos[..., rows, :])


def stall(band: RankBand, rank: int) -> int:
    """The last rank never samples: the others' halo exchange must end with a message, not hang."""
    if rank == len(band.layout.bands) - 1:
        return 0
    try:
        surrogate("diffusion", 0.0).sample(conditions(band.rows), sampler=SamplerConfig(num_steps=2),
                                           generator=torch.Generator().manual_seed(7), bands=band)
    except TimeoutError as err:
        print(f"STALLED rank={rank}: {err}", flush=True)
        return 0
    return 1


def main() -> int:
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    timeout = 3.0 if "--stall" in sys.argv else 60.0
    DataParallel(comm, torch.device("cpu"), timeout=timeout)  # the worker's process group (gloo)
    boxes = decompose(NX, NY, 1, size)
    band = RankBand(BandLayout(NY, NX, [(b.j0, b.nj) for b in boxes], TILE), rank, timeout_s=timeout)
    if "--stall" in sys.argv:
        code = stall(band, rank)
        comm.Barrier()
        return code
    whole = RankBand(BandLayout(NY, NX, [(0, NY)], TILE), 0, timeout_s=60.0)  # one rank, the same tiling
    failed = False
    for name, (objective, whitening, sampler) in VARIANTS.items():
        model = surrogate(objective, whitening)
        ours = model.sample(conditions(band.rows), n=3, sampler=sampler,
                            generator=torch.Generator().manual_seed(7), bands=band)
        one = model.sample(conditions(slice(None)), n=3, sampler=sampler,
                           generator=torch.Generator().manual_seed(7), bands=whole)[..., band.rows, :]
        gen = torch.Generator().manual_seed(7)  # no halo: the band tiled on its own, with the same noise
        alone = model.sample(conditions(band.rows), n=3, sampler=sampler, noise=band.noise(gen), tile=TILE)
        diff = float((ours - one).abs().max())
        print(f"RESULT rank={rank}/{size} variant={name} rows={band.rows.start}..{band.rows.stop - 1} "
              f"max_abs_diff={diff:.3e} equal={torch.equal(ours, one)} "
              f"no_halo_diff={float((alone - one).abs().max()):.3e} exchange_calls={band.exchange.calls}", flush=True)
        failed |= not torch.equal(ours, one)
    comm.Barrier()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
