"""[worker.spinup] rest_volume: a generated state keeps the volume of a closed basin started from rest."""
import numpy as np

from bridge.worker.engine import with_rest_volume


def test_ssh_has_zero_mean_over_ocean_points_and_nothing_else_moves():
    rng = np.random.default_rng(0)
    state = rng.standard_normal((3, 6, 8)) + 0.3  # a volume offset of 0.3 m
    mask = np.ones((6, 8))
    mask[:, 0] = 0  # a land column: its (meaningless) values are left alone
    out = with_rest_volume(state, ("temp", "ssh", "u"), mask)
    ocean = mask > 0
    assert abs(state[1][ocean].mean()) > 0.1  # the case fails without the shift
    assert abs(out[1][ocean].mean()) < 1e-15
    np.testing.assert_array_equal(out[1][~ocean], state[1][~ocean])
    np.testing.assert_allclose(out[1][ocean] - state[1][ocean], -state[1][ocean].mean())  # one uniform shift
    np.testing.assert_array_equal(out[[0, 2]], state[[0, 2]])
    np.testing.assert_array_equal(with_rest_volume(state, ("temp", "sst", "u"), mask), state)  # no ssh: as is
