"""One rank of chapter 6's SyncBatchNorm run: a gloo process group on the loopback interface, on the CPU.

The chapter starts one per rank: ``python -c 'import sys, _syncbn_worker as w; w.main(sys.argv[1:])' RANK
WORLD_SIZE FOLDER`` (imported by name, so that a trace can include this file). Each rank meets the others
through a FileStore in FOLDER, reads the whole batch from FOLDER/batch.pt and takes its own slice, calls the
real SyncBatchNorm module (which refuses CPU tensors once a process group is up), then the real autograd
Function behind it, forward and backward, traced; then the Function once more with the batch split so that
rank 0 gets no sample; and writes its tensors and traces back to FOLDER.

SyncBatchNorm's Function calls five ATen operators that have CUDA and XPU kernels only. The STAND_INS below
are CPU kernels for them, written here for this chapter (they are not PyTorch's), registered from Python
under the ATen names, so that the Function's own code runs unchanged.
"""

import sys
import traceback
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules._functions import SyncBatchNorm as SyncBatchNormFunction

import tracer


def reduced_dims(input):
    """Every dimension but the channels (dim 1): what batch norm averages over."""
    return [0, *range(2, input.dim())]


def per_channel(values, input):
    """A (C,) tensor shaped to broadcast over `input`'s channel dimension."""
    return values.view(1, -1, *([1] * (input.dim() - 2)))


def stats_stand_in(input, eps):
    var, mean = torch.var_mean(input, dim=reduced_dims(input), correction=0)
    return mean, torch.rsqrt(var + eps)


def gather_stats_with_counts_stand_in(input, mean, invstd, running_mean, running_var, momentum, eps, counts):
    total = counts.sum()
    share = (counts / total).view(-1, 1)
    global_mean = (share * mean).sum(0)
    # each rank's biased variance, 1/invstd^2 - eps, moved to the global mean (Chan's combination)
    global_var = (share * (invstd.pow(-2) - eps + (mean - global_mean) ** 2)).sum(0)
    if running_mean is not None:
        running_mean.mul_(1 - momentum).add_(momentum * global_mean)
    if running_var is not None:
        running_var.mul_(1 - momentum).add_(momentum * global_var * total / (total - 1))
    return global_mean, torch.rsqrt(global_var + eps)


def elemt_stand_in(input, weight, bias, mean, invstd, eps):
    out = (input - per_channel(mean, input)) * per_channel(invstd, input)
    if weight is not None:
        out = out * per_channel(weight, input)
    if bias is not None:
        out = out + per_channel(bias, input)
    return out


def backward_reduce_stand_in(grad_out, input, mean, invstd, weight, input_g, weight_g, bias_g):
    sum_dy = grad_out.sum(reduced_dims(input))
    sum_dy_xmu = (grad_out * (input - per_channel(mean, input))).sum(reduced_dims(input))
    return sum_dy, sum_dy_xmu, sum_dy_xmu * invstd, sum_dy


def backward_elemt_stand_in(grad_out, input, mean, invstd, weight, sum_dy, sum_dy_xmu, count):
    total = count.sum().to(input.dtype)
    xmu = input - per_channel(mean, input)
    grad = grad_out - per_channel(sum_dy / total, input) - xmu * per_channel(invstd ** 2 * sum_dy_xmu / total, input)
    scale = invstd if weight is None else invstd * weight
    return grad * per_channel(scale, input)


STAND_INS = {
    "batch_norm_stats": stats_stand_in,
    "batch_norm_gather_stats_with_counts": gather_stats_with_counts_stand_in,
    "batch_norm_elemt": elemt_stand_in,
    "batch_norm_backward_reduce": backward_reduce_stand_in,
    "batch_norm_backward_elemt": backward_elemt_stand_in,
}


def register_stand_ins():
    """Register the stand-ins as the operators' CPU kernels; the library must stay alive while they are used."""
    library = torch.library.Library("aten", "IMPL")
    for op, kernel in STAND_INS.items():
        library.impl(op, kernel, "CPU")
    return library


def stand_ins_agree_with(device):
    """Whether PyTorch's own kernels on `device` (CUDA) give what the stand-ins give, for all five operators."""
    x, dy = torch.randn(6, 3, 4, 4, device=device), torch.randn(6, 3, 4, 4, device=device)
    weight, bias, eps = torch.rand(3, device=device) + 0.5, torch.randn(3, device=device), 1e-5
    mean, invstd = torch.batch_norm_stats(x, eps)
    parts = [torch.batch_norm_stats(part, eps) for part in (x[:2], x[2:])]  # two "ranks", 2 and 4 samples
    means, invstds = torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts])
    counts = torch.tensor([2.0 * 16, 4.0 * 16], device=device)
    running = [torch.zeros(3, device=device), torch.ones(3, device=device)]
    running_ours = [r.clone() for r in running]
    sums = torch.batch_norm_backward_reduce(dy, x, mean, invstd, weight, True, True, True)
    count = torch.tensor([6 * 16], dtype=torch.int32, device=device)
    pairs = [
        ((mean, invstd), stats_stand_in(x, eps)),
        (torch.batch_norm_gather_stats_with_counts(x, means, invstds, *running, 0.1, eps, counts),
         gather_stats_with_counts_stand_in(x, means, invstds, *running_ours, 0.1, eps, counts)),
        (running, running_ours),
        ((torch.batch_norm_elemt(x, weight, bias, mean, invstd, eps),), (elemt_stand_in(x, weight, bias, mean, invstd, eps),)),
        (sums, backward_reduce_stand_in(dy, x, mean, invstd, weight, True, True, True)),
        ((torch.batch_norm_backward_elemt(dy, x, mean, invstd, weight, *sums[:2], count),),
         (backward_elemt_stand_in(dy, x, mean, invstd, weight, *sums[:2], count),)),
    ]
    return all(torch.allclose(theirs, ours, atol=1e-4) for a, b in pairs for theirs, ours in zip(a, b))


def warm_up():
    """What a first call does once: the Python objects of the operators, and the module autograd imports."""
    import torch.fx.experimental.symbolic_shapes  # noqa: F401  (backward's _make_grads imports it on first use)
    for op in STAND_INS:
        getattr(torch.ops.aten, op).default
    torch.ops.c10d.allgather_.default
    torch.ops.c10d.allreduce_.default


def sync_round(x, weight, bias, running_mean, running_var, batch, grad_output, world_size):
    """The real autograd Function, forward and backward, as SyncBatchNorm.forward calls it."""
    y = SyncBatchNormFunction.apply(x, weight, bias, running_mean, running_var, batch["eps"], batch["momentum"],
                                    dist.group.WORLD, world_size)
    y.backward(grad_output)
    return y


def empty_round(rank, batch, world_size):
    """The Function again, on this rank's part of batch["empty_slices"] (rank 0's is empty), traced."""
    start, stop = batch["empty_slices"][rank]
    x = batch["x"][start:stop].clone().requires_grad_()
    weight, bias = batch["weight"].clone().requires_grad_(), batch["bias"].clone().requires_grad_()
    running_mean, running_var = torch.zeros(x.shape[1], dtype=x.dtype), torch.ones(x.shape[1], dtype=x.dtype)
    with tracer.trace(layers=("python", "aten")) as t_empty:
        y = sync_round(x, weight, bias, running_mean, running_var, batch, batch["grad_output"][start:stop], world_size)
    tensors = {"output": y.detach(), "running_mean": running_mean, "running_var": running_var, "grad_input": x.grad}
    return t_empty, tensors


def run_nccl(rank, world_size, folder, batch):
    """On GPUs: the real SyncBatchNorm module over NCCL, one GPU per rank, traced forward and backward."""
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=(folder / "store").as_uri(), rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=30))
    device = torch.device("cuda", rank)
    start, stop = batch["slices"][rank]
    x = batch["x"][start:stop].to(device).requires_grad_()
    module = nn.SyncBatchNorm(x.shape[1], eps=batch["eps"], momentum=batch["momentum"]).double().to(device)
    with torch.no_grad():
        module.weight.copy_(batch["weight"])
        module.bias.copy_(batch["bias"])
    with tracer.trace(layers=("python", "aten")) as t_sync:
        y = module(x)
        y.backward(batch["grad_output"][start:stop].to(device))
    torch.save({"output": y.detach().cpu(), "grad_input": x.grad.cpu(), "running_mean": module.running_mean.cpu(),
                "running_var": module.running_var.cpu(), "grad_weight": module.weight.grad.cpu()}, folder / f"rank{rank}.pt")
    t_sync.to_json(folder / f"rank{rank}.sync.json")
    dist.destroy_process_group()


def run(rank, world_size, folder):
    batch = torch.load(folder / "batch.pt")
    if batch.get("backend") == "nccl":
        return run_nccl(rank, world_size, folder, batch)
    dist.init_process_group("gloo", init_method=(folder / "store").as_uri(), rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=30))
    start, stop = batch["slices"][rank]
    x = batch["x"][start:stop].clone().requires_grad_()
    grad_output = batch["grad_output"][start:stop]
    channels = x.shape[1]

    # the real module, in training mode, with a process group up: it refuses the CPU tensor
    module = nn.SyncBatchNorm(channels).double()
    with tracer.trace() as t_module:
        try:
            module(x)
            module_error = None
        except ValueError as error:
            module_error = str(error)

    library = register_stand_ins()
    warm_up()
    weight = batch["weight"].clone().requires_grad_()
    bias = batch["bias"].clone().requires_grad_()
    running_mean, running_var = torch.zeros(channels, dtype=x.dtype), torch.ones(channels, dtype=x.dtype)
    with tracer.trace(layers=("python", "aten")) as t_sync:
        y = sync_round(x, weight, bias, running_mean, running_var, batch, grad_output, world_size)
    # the same round again, on the Python layer with this file included: where the stand-ins run
    with tracer.trace(include=("torch", "_syncbn_worker")) as t_stand_ins:
        sync_round(x.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_(),
                   bias.detach().clone().requires_grad_(), running_mean.clone(), running_var.clone(),
                   batch, grad_output, world_size)
    t_empty, empty = empty_round(rank, batch, world_size)
    del library

    torch.save({"output": y.detach(), "running_mean": running_mean, "running_var": running_var,
                "grad_input": x.grad, "grad_weight": weight.grad, "grad_bias": bias.grad,
                "module_error": module_error, "empty": empty}, folder / f"rank{rank}.pt")
    t_module.to_json(folder / f"rank{rank}.module.json")
    t_sync.to_json(folder / f"rank{rank}.sync.json")
    t_stand_ins.to_json(folder / f"rank{rank}.stand_ins.json")
    t_empty.to_json(folder / f"rank{rank}.empty.json")
    dist.destroy_process_group()


def main(argv):
    torch.set_num_threads(1)
    rank, world_size = map(int, argv[:2])
    try:
        run(rank, world_size, Path(argv[2]))
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
