"""DistributedDataParallel on two CPU processes (gloo) = one process with the whole batch."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import richness as rn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build():
    torch.manual_seed(0)
    return rn.parameterize(rn.models.MLP(8, 32, 2), rn.richness(0.5, "mup", base_width=16))


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 8, generator=g), torch.randn(16, 2, generator=g)


def _train(model, x, y, steps=3):
    opt = rn.optimizer(model, lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (model(x) - y).pow(2).sum(1).mean()).backward()
        opt.step()


def _worker(rank, port, path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    model = _build()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    x, y = _data()
    half = slice(8 * rank, 8 * rank + 8)
    opt = rn.optimizer(model, lr=0.1)  # groups hold the same tensors DDP synchronizes
    for _ in range(3):
        opt.zero_grad()
        (0.5 * (ddp(x[half]) - y[half]).pow(2).sum(1).mean()).backward()
        opt.step()
    if rank == 0:
        torch.save(model.state_dict(), path)
    dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
def test_ddp_on_two_processes_matches_one_process(tmp_path):
    path = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(_free_port(), str(path)), nprocs=2, join=True)
    single = _build()
    x, y = _data()
    _train(single, x, y)
    ddp_model = _build()
    ddp_model.load_state_dict(torch.load(path, weights_only=True))
    assert torch.allclose(ddp_model(x), single(x), rtol=1e-5, atol=1e-6)
