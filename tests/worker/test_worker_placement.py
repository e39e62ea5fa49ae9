"""One device per worker rank: the node-local rank's GPU, errors naming [worker] device, the placement log."""
from __future__ import annotations

import logging

import pytest
import torch
from worker_fixtures import write_config

from bridge.config.config import load_config
from bridge.worker import placement
from bridge.worker.placement import choose_device, device_for_rank, local_rank, placement_report
from models.settings import ConfigError


@pytest.mark.parametrize("env, rank, var", [
    ({"OMPI_COMM_WORLD_LOCAL_RANK": "3"}, 3, "OMPI_COMM_WORLD_LOCAL_RANK"),
    ({"SLURM_LOCALID": "1"}, 1, "SLURM_LOCALID"),
    ({"MPI_LOCALRANKID": "2"}, 2, "MPI_LOCALRANKID"),
    ({"PMI_LOCAL_RANK": "0"}, 0, "PMI_LOCAL_RANK"),
    # mpirun inside a SLURM allocation: the launcher's own variable wins over an inherited SLURM_LOCALID
    ({"SLURM_LOCALID": "0", "OMPI_COMM_WORLD_LOCAL_RANK": "5"}, 5, "OMPI_COMM_WORLD_LOCAL_RANK"),
    ({"OMPI_COMM_WORLD_LOCAL_RANK": "", "SLURM_LOCALID": "4"}, 4, "SLURM_LOCALID"),
    ({}, None, None),
])
def test_local_rank_and_its_variable(env, rank, var):
    assert local_rank(env) == (rank, var)


@pytest.mark.parametrize("setting, worker_rank, env, gpus, device", [
    ("auto", 0, {"OMPI_COMM_WORLD_LOCAL_RANK": "3"}, 2, "cuda:1"),
    ("auto", 0, {"SLURM_LOCALID": "2"}, 4, "cuda:2"),
    ("auto", 5, {}, 4, "cuda:1"),  # no launcher variable: the worker rank stands in
    ("cuda", 0, {"OMPI_COMM_WORLD_LOCAL_RANK": "1"}, 2, "cuda:1"),
    ("cuda:1", 0, {"OMPI_COMM_WORLD_LOCAL_RANK": "0"}, 2, "cuda:1"),
    ("cpu", 0, {"OMPI_COMM_WORLD_LOCAL_RANK": "1"}, 2, "cpu"),
    ("auto", 1, {"OMPI_COMM_WORLD_LOCAL_RANK": "1"}, 0, "cpu"),
])
def test_choose_device(setting, worker_rank, env, gpus, device):
    assert choose_device(setting, worker_rank, env, gpus) == device


@pytest.mark.parametrize("setting", ["cuda", "cuda:0"])
def test_cuda_without_gpu_names_the_setting_and_the_cause(setting):
    with pytest.raises(ConfigError, match=rf"\[worker\] device = '{setting}', but (this torch|torch sees no)"):
        choose_device(setting, 0, {}, 0)


def test_gpu_index_beyond_the_count_names_the_setting_and_the_count():
    with pytest.raises(ConfigError, match=r"\[worker\] device = 'cuda:5', but torch sees 2 CUDA device\(s\) "
                                          r"on this host \(CUDA_VISIBLE_DEVICES='0,1'\)"):
        choose_device("cuda:5", 0, {"CUDA_VISIBLE_DEVICES": "0,1"}, 2)


@pytest.mark.parametrize("value, ok", [("gpu", False), ("cuda:", False), ("cuda:x", False), ("CUDA", False),
                                       ("cuda:0", True), ("cuda:12", True), ("auto", True)])
def test_deploy_config_checks_the_device_before_launch(tmp_path, value, ok):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('device = "cpu"', f"device = {value!r}", 1))
    if ok:
        assert load_config(path).worker.device == value
        return
    with pytest.raises(ConfigError, match=rf"deploy.toml: \[worker\] key 'device' has invalid value '{value}' "
                                          r"\(allowed: 'auto', 'cpu', 'cuda', 'cuda:N'\)"):
        load_config(path)


def fake_gpus(monkeypatch, count: int) -> None:
    """torch.cuda as on a node with ``count`` GPUs, for the parts that only ask about them."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU 80GB")
    for name in placement.LOCAL_RANK_VARS:
        monkeypatch.delenv(name, raising=False)


def test_device_for_rank_logs_host_device_gpu_and_source(monkeypatch, caplog):
    fake_gpus(monkeypatch, 2)
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3")
    monkeypatch.setattr(placement.socket, "gethostname", lambda: "node7")
    with caplog.at_level(logging.INFO, logger="bridge.worker.placement"):
        assert device_for_rank("auto", 0) == "cuda:1"
    assert "worker rank 0 on host node7 uses cuda:1 (Fake GPU 80GB); local rank 3 from " \
           "OMPI_COMM_WORLD_LOCAL_RANK" in caplog.text


def test_device_for_rank_logs_the_worker_rank_fallback(monkeypatch, caplog):
    fake_gpus(monkeypatch, 4)
    with caplog.at_level(logging.INFO, logger="bridge.worker.placement"):
        assert device_for_rank("auto", 2) == "cuda:2"
    assert "no local-rank variable set" in caplog.text and "worker rank 2 used instead" in caplog.text


class FakeComm:
    """The two calls placement_report makes on an mpi4py communicator; allgather returns ``table``."""

    def __init__(self, table, rank: int = 0):
        self.table, self.rank, self.sent = table, rank, None

    def allgather(self, item):
        self.sent = item
        return self.table

    def Get_rank(self) -> int:
        return self.rank


def test_report_warns_when_ranks_of_a_host_share_a_gpu(caplog):
    table = [("n1", "cuda:0"), ("n1", "cuda:1"), ("n1", "cuda:0"), ("n2", "cuda:0"), ("n1", "cpu"), ("n1", "cpu")]
    comm = FakeComm(table)
    with caplog.at_level(logging.INFO, logger="bridge.worker.placement"):
        assert placement_report(comm, "cuda:0") == table
    assert comm.sent[1] == "cuda:0"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "worker ranks [0, 2] share cuda:0 on host n1" in warnings[0]
    assert "rank 3: n2 cuda:0" in caplog.text


def test_report_is_quiet_with_distinct_gpus_and_off_rank_0(caplog):
    with caplog.at_level(logging.INFO, logger="bridge.worker.placement"):
        placement_report(FakeComm([("n1", "cuda:0"), ("n1", "cuda:1"), ("n2", "cuda:0")]), "cuda:0")
        assert not [r for r in caplog.records if r.levelno == logging.WARNING]
        caplog.clear()
        placement_report(FakeComm([("n1", "cuda:0"), ("n1", "cuda:0")], rank=1), "cuda:0")
    assert not caplog.records  # only rank 0 reports


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (torch sees no CUDA device)")
def test_real_gpu_placement():
    count = torch.cuda.device_count()
    for rank in range(count + 1):
        device = choose_device("auto", 0, {"OMPI_COMM_WORLD_LOCAL_RANK": str(rank)}, count)
        assert device == f"cuda:{rank % count}"
        assert torch.zeros(2, device=device).device == torch.device(device)
    assert device_for_rank("cuda:0", 0) == "cuda:0"
