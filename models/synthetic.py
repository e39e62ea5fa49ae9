"""Synthetic data in the project's netCDF convention: a tiny file for tests, and a
chaotic 2-D turbulence toy standing in for the eddying gyre in benchmarks.

The toy is stochastically forced barotropic vorticity on a doubly periodic square,
pseudo-spectral, with land cells damped towards rest (a crude Brinkman penalization).
It is NOT an ocean model: it only shares what the surrogate benchmark needs, i.e. a
chaotic state whose small scales cannot be predicted from the previous record, an
inverse cascade feeding large eddies, land, and parameters θ that change the statistics.
"""
from __future__ import annotations

import numpy as np

from .ncio import write_fields

__all__ = ["write_tiny", "TurbulenceToy", "write_turbulence"]

F0, GRAV = 1.0e-4, 9.81  # Coriolis parameter (s-1) and gravity (m s-2) to express ψ as ssh


def _grid_coords(ny: int, nx: int, dx: float) -> tuple[np.ndarray, np.ndarray]:
    return (np.arange(nx) + 0.5) * dx, (np.arange(ny) + 0.5) * dx


def write_tiny(path, nt: int = 10, ny: int = 12, nx: int = 16, tau0: float = 0.1, ahm: float = 500.0,
               seed: int = 0, nan_records: tuple[int, ...] = (), variables=("ssh", "u", "v", "temp")):
    """A small, cheap file: drifting waves plus noise, a land block in one corner.

    ``nan_records`` puts a NaN on an ocean point of those records (bad-input tests).
    """
    rng = np.random.default_rng(seed)
    dx = 10e3
    x, y = _grid_coords(ny, nx, dx)
    t = np.arange(nt)[:, None, None]
    X, Y = np.meshgrid(x / (nx * dx), y / (ny * dx))
    mask = np.ones((ny, nx), np.int8)
    mask[: ny // 4, : nx // 4] = 0
    phase = 2 * np.pi * (X + 0.1 * t * (1 + tau0)) + rng.uniform(0, 2 * np.pi)
    ssh = 0.1 * tau0 * np.sin(phase) * np.cos(np.pi * Y) + 0.01 * rng.normal(size=(nt, ny, nx))
    fields = {"ssh": ssh, "u": -np.gradient(ssh, axis=1) * 10, "v": np.gradient(ssh, axis=2) * 10,
              "temp": 15 + 5 * Y + ahm / 1000 * np.cos(phase) + 0.1 * rng.normal(size=(nt, ny, nx))}
    fields = {k: fields[k].astype(np.float32) for k in variables}
    for r in nan_records:
        fields[variables[0]][r, ny // 2, nx // 2] = np.nan
    params = {"tau0": (tau0, "N m-2", "wind stress amplitude"),
              "ahm": (ahm, "m2 s-1", "lateral eddy viscosity")}
    return write_fields(path, fields, mask, x, y, t.ravel() * 86400.0, params,
                        attrs={"title": "oceanbridge tiny synthetic test data"})


class TurbulenceToy:
    """Stochastically forced 2-D vorticity, nondimensional on [0, 2π)^2.

    d(omega)/dt + J(psi, omega) = nu lap(omega) - r omega + curl(wind) + noise_amp xi(t) - land damping,
    lap(psi) = omega. xi is white in time, Gaussian in a ring of wavenumbers around k_f.
    Linear terms are integrated exactly (integrating factor), the Jacobian with Heun,
    the noise with Euler-Maruyama; the Jacobian is 2/3-dealiased.
    """

    def __init__(self, n: int = 32, noise_amp: float = 1.0, r: float = 0.1, tau0: float = 1.0,
                 nu: float = 2e-3, k_f: float = 8.0, dt: float = 0.02, coast: int = 1, seed: int = 0):
        self.n, self.dt, self.noise_amp, self.rng = n, dt, noise_amp, np.random.default_rng(seed)
        k = np.fft.fftfreq(n, 1.0 / n)
        self.kx, self.ky = np.meshgrid(k, k)
        self.k2 = self.kx ** 2 + self.ky ** 2
        self.k2_inv = np.where(self.k2 > 0, 1.0 / np.maximum(self.k2, 1), 0.0)
        self.dealias = (np.abs(self.kx) < n / 3) & (np.abs(self.ky) < n / 3)
        self.decay = np.exp(-(nu * self.k2 + r) * dt)
        kk = np.sqrt(self.k2)
        self.ring = (np.abs(kk - k_f) <= 1.5).astype(float)
        self.ring *= np.sqrt(self.k2.size / max(self.ring.sum(), 1))  # unit-variance forcing field
        grid = np.arange(n) * 2 * np.pi / n
        X, Y = np.meshgrid(grid, grid)
        self.wind_hat = np.fft.fft2(tau0 * np.sin(2 * Y) * 0.5)  # double-gyre-like steady curl
        self.land = np.zeros((n, n), bool)
        if coast:
            self.land[:coast, :] = self.land[-coast:, :] = True
            self.land[:, :coast] = self.land[:, -coast:] = True
        self.land[n // 2 - n // 16: n // 2 + n // 16, n // 4 - n // 16: n // 4 + n // 16] = True  # an island
        self.omega_hat = np.fft.fft2(0.1 * self.rng.normal(size=(n, n))) * self.dealias

    def _velocity(self, omega_hat):
        psi_hat = -omega_hat * self.k2_inv
        u = np.real(np.fft.ifft2(-1j * self.ky * psi_hat))
        v = np.real(np.fft.ifft2(1j * self.kx * psi_hat))
        return psi_hat, u, v

    def _tendency(self, omega_hat):
        _, u, v = self._velocity(omega_hat)
        wx = np.real(np.fft.ifft2(1j * self.kx * omega_hat))
        wy = np.real(np.fft.ifft2(1j * self.ky * omega_hat))
        omega = np.real(np.fft.ifft2(omega_hat))
        land_drag = np.where(self.land, 5.0, 0.0) * omega  # pushes land towards rest
        return -np.fft.fft2(u * wx + v * wy + land_drag) * self.dealias + self.wind_hat

    def step(self) -> None:
        dt, w0 = self.dt, self.omega_hat
        f0 = self._tendency(w0)
        w1 = (w0 + dt * f0) * self.decay
        f1 = self._tendency(w1)
        noise = np.fft.fft2(self.rng.normal(size=(self.n, self.n))) * self.ring * self.dealias
        self.omega_hat = (w0 + 0.5 * dt * f0) * self.decay + 0.5 * dt * f1 + np.sqrt(dt) * self.noise_amp * noise
        self.omega_hat[0, 0] = 0.0

    def state(self) -> dict[str, np.ndarray]:
        psi_hat, u, v = self._velocity(self.omega_hat)
        return {"psi": np.real(np.fft.ifft2(psi_hat)), "u": u, "v": v,
                "omega": np.real(np.fft.ifft2(self.omega_hat))}


def write_turbulence(path, n_records: int = 200, n: int = 32, steps_per_record: int = 10, spinup: int = 1000,
                     noise_amp: float = 1.0, r: float = 0.1, tau0: float = 1.0, seed: int = 0,
                     L: float = 1.0e6, U: float = 0.1):
    """Run the toy and write ssh, u, v, temp records in physical units.

    Scaling: basin L (m), velocity U (m s-1); ssh = f0 psi / g; temp is the toy's
    vorticity mapped to a 15 degC +/- few degC field (a dynamically active stand-in
    for a temperature front, not an advected tracer).
    """
    toy = TurbulenceToy(n=n, noise_amp=noise_amp, r=r, tau0=tau0, seed=seed)
    for _ in range(spinup):
        toy.step()
    records = []
    for _ in range(n_records):
        for _ in range(steps_per_record):
            toy.step()
        records.append(toy.state())
    length, time_unit = L / (2 * np.pi), L / (2 * np.pi) / U
    stack = {k: np.stack([rec[k] for rec in records]) for k in records[0]}
    fields = {"ssh": F0 * stack["psi"] * U * length / GRAV, "u": stack["u"] * U, "v": stack["v"] * U,
              "temp": 15.0 + stack["omega"] / max(np.abs(stack["omega"]).std(), 1e-12)}
    dx = L / n
    x, y = _grid_coords(n, n, dx)
    mask = (~toy.land).astype(np.int8)
    time = np.arange(1, n_records + 1) * steps_per_record * toy.dt * time_unit
    params = {"tau0": (tau0, "1", "steady wind forcing amplitude (nondimensional)"),
              "rdrag": (r / time_unit, "s-1", "linear bottom drag"),
              "noise": (noise_amp, "1", "stochastic eddy forcing amplitude (nondimensional)")}
    return write_fields(path, {k: v.astype(np.float32) for k, v in fields.items()}, mask, x, y, time, params,
                        attrs={"title": "oceanbridge 2-D turbulence toy (stand-in for the eddying gyre)",
                               "source": "models.synthetic.write_turbulence"})
