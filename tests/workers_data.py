"""Datasets for tests/test_workers.py, in a module of their own: spawn and forkserver workers import them."""

import os
import signal
import threading

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

INIT_MARK = []  # set in a worker by mark_worker


class Squares(Dataset):
    """i -> [i*i]; `fail_at` raises ValueError there, `kill_at` SIGKILLs the worker, `hang_at` blocks it."""

    def __init__(self, n=16, fail_at=None, kill_at=None, hang_at=None, hang_file=None):
        self.n, self.fail_at, self.kill_at, self.hang_at, self.hang_file = n, fail_at, kill_at, hang_at, hang_file

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"item {i} is broken")
        if i == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if i == self.hang_at:
            if self.hang_file:
                open(self.hang_file, "w").close()  # the test waits for this before it shuts the loader down
            threading.Event().wait(60)  # until the DataLoader terminates the worker
        return torch.tensor([float(i * i)])


class Noisy(Dataset):
    """Random numbers from torch's generator and the worker's seed: what tracing must not change."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return torch.cat([torch.rand(2), torch.tensor([float(info.seed % 1000), float(len(INIT_MARK))])])


def mark_worker(worker_id):
    INIT_MARK.append(worker_id)


class Shards(IterableDataset):
    """range(n), each worker taking every num_workers-th item (get_worker_info sharding)."""

    def __init__(self, n=12):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(torch.tensor([float(i)]) for i in range(start, self.n, step))
