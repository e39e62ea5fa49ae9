"""CUDA path: bf16 autocast, data on device, CPU checkpoint resumed on GPU (needs a GPU)."""
import pytest
import torch

from models.data import PairDataset
from models.sampling import SamplerConfig
from models.surrogate import Surrogate, SurrogateConfig
from models.synthetic import write_tiny
from models.train import TrainConfig, Trainer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_train_sample_and_resume_on_cuda(tmp_path):
    ds = PairDataset([str(write_tiny(tmp_path / "a.nc", nt=8))], ["ssh", "u", "v", "temp"])
    cfg = SurrogateConfig(ds.spec, model_channels=8, channel_mult=(1, 2))
    cpu = Trainer(Surrogate(cfg), TrainConfig(batch_size=4, device="cpu"))
    cpu.fit(ds, 2, checkpoint=tmp_path / "ck.pt", progress=False)
    gpu = Trainer.load(tmp_path / "ck.pt", device="cuda")
    assert next(gpu.model.parameters()).is_cuda and gpu.step == 2
    gpu.fit(ds, 4, progress=False)
    assert ds.fields.is_cuda  # the dataset moved to the device once
    out = gpu.sample(ds.batch(torch.arange(2)), n=3, sampler=SamplerConfig(num_steps=4),
                     generator=torch.Generator("cuda").manual_seed(0))
    assert out.is_cuda and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert out.shape == (2, 3, 4, 12, 16)
