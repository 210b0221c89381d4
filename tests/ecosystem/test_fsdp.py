"""FSDP2 (`fully_shard`) on two CPU processes (gloo) = one process with the whole batch.

The multipliers are parametrizations of the sharded parameters: they survive sharding, the
forward pass sees g·W, and `rn.optimizer` built on the sharded model keeps each layer's LR.
"""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import richness as rn
from richness.nn import Multiplier, effective_weights

fsdp = pytest.importorskip("torch.distributed.fsdp")
if not hasattr(fsdp, "fully_shard"):
    pytest.skip("torch.distributed.fsdp.fully_shard needs torch >= 2.6", allow_module_level=True)

STEPS = 3
LR = 0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build(gauge):
    torch.manual_seed(0)
    model = rn.models.MLP(8, 32, 2, depth=3).double()
    return rn.parameterize(model, rn.richness(0.5, gauge, base_width=16))


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 8, generator=g, dtype=torch.float64)
    return x, torch.randn(16, 2, generator=g, dtype=torch.float64)


def _lrs(opt):
    return {group["layer"]: group["lr"] for group in opt.param_groups}


def _worker(rank, port, path, gauge):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    model = _build(gauge)
    fsdp.fully_shard(model)
    opt = rn.optimizer(model, lr=LR)  # groups hold the sharded (DTensor) parameters
    x, y = _data()
    half = slice(8 * rank, 8 * rank + 8)
    for _ in range(STEPS):
        opt.zero_grad()
        (0.5 * (model(x[half]) - y[half]).pow(2).sum(1).mean()).backward()
        opt.step()
    state = {
        k: v.full_tensor() if hasattr(v, "full_tensor") else v
        for k, v in model.state_dict().items()
    }
    sharded = [type(p).__name__ for p in model.parameters()]
    gains = [m.multiplier.item() for m in model.modules() if isinstance(m, Multiplier)]
    if rank == 0:
        torch.save({"state": state, "lrs": _lrs(opt), "sharded": sharded, "g": gains}, path)
    # both ranks finish their collectives and drop the sharded state before the group goes:
    # tearing gloo down under a peer still in FSDP's hooks aborted a process now and then
    dist.barrier()
    del model, opt, state
    dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
@pytest.mark.parametrize("gauge", ["stp", "mup"])  # per-layer LRs; multipliers g ≠ 1
def test_fsdp2_on_two_processes_matches_one_process(tmp_path, gauge):
    path = tmp_path / "fsdp.pt"
    mp.spawn(_worker, args=(_free_port(), str(path), gauge), nprocs=2, join=True)
    single = _build(gauge)
    opt = rn.optimizer(single, lr=LR)
    x, y = _data()
    for _ in range(STEPS):
        opt.zero_grad()
        (0.5 * (single(x) - y).pow(2).sum(1).mean()).backward()
        opt.step()
    saved = torch.load(path, weights_only=True)
    assert set(saved["sharded"]) == {"DTensor"}  # every parameter was sharded
    gains = [m.multiplier.item() for m in single.modules() if isinstance(m, Multiplier)]
    assert saved["g"] == gains  # the multipliers survive sharding
    assert len(set(gains)) > 1 if gauge == "mup" else set(gains) == {1.0}
    assert saved["lrs"] == pytest.approx(_lrs(opt), rel=1e-12)  # per-layer LRs kept
    assert len(set(saved["lrs"].values())) == (1 if gauge == "mup" else 3)
    fsdp_model = _build(gauge)
    fsdp_model.load_state_dict(saved["state"])  # the table travels and is checked on load
    weights, reference = effective_weights(fsdp_model), effective_weights(single)
    assert weights.keys() == reference.keys()
    for name in weights:  # float64: only the order of the gradient sum differs
        torch.testing.assert_close(weights[name], reference[name], rtol=1e-10, atol=1e-12)
    assert not torch.allclose(
        weights["layers.0.weight"], effective_weights(_build(gauge))["layers.0.weight"]
    )
