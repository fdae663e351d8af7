"""trace(workers=True) on real DataLoaders: fork, spawn, forkserver; persistent workers; failures; batch links."""

import gc
import json
import os
import signal
import sys
import time

import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402
from torch.utils.data._utils import worker as worker_module  # noqa: E402
from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter  # noqa: E402

import tracer  # noqa: E402
import workers_data  # noqa: E402
from tracer.record import workers  # noqa: E402

pytestmark = pytest.mark.torch
RECEIVER = "_MultiProcessingDataLoaderIter._next_data"


def loader(dataset=None, method="fork", **options):
    options.setdefault("batch_size", 4)
    options.setdefault("num_workers", 2)
    if options["num_workers"]:
        options["multiprocessing_context"] = method
    return DataLoader(workers_data.Squares() if dataset is None else dataset, **options)


def received(t):
    return [c for c in t.calls if c.name == RECEIVER and not _in_worker(c)]


def fetches(t):
    return [c for c in t.calls if c.name.endswith("Fetcher.fetch") and _in_worker(c)]


def _in_worker(call):
    return any(a.kind == "worker" for a in call.ancestors())


def wait_for(condition, timeout=30):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {condition}"
        os.sched_yield()


def check_batches_linked(t, n_batches):
    """Every batch a main _next_data received has its worker fetch, and every fetch its receiver."""
    pairs = t.batches()
    assert len(pairs) == n_batches
    for main, fetch in pairs:
        assert main is not None and fetch is not None, (main, fetch)
        assert main.batch == fetch.batch and main.name == RECEIVER and fetch.name == "_MapDatasetFetcher.fetch"
        assert fetch.start_ns <= main.start_ns + main.duration_ns
        assert t.batch(main.batch, epoch=[p for p in pairs if p[0].batch == main.batch].index((main, fetch))) == (main, fetch)


def check_worker_nodes(t, method, n=2):
    nodes = t.workers
    assert [w.name for w in nodes] == [f"worker {i}" for i in range(n)]
    for i, node in enumerate(nodes):
        assert node.kind == "worker" and node.parent is t.root
        assert node.args == {"pid": node.args["pid"], "worker_id": str(i), "start_method": method}
        assert int(node.args["pid"]) != os.getpid()
        names = [c.name for c in node.children]
        assert names[0] == "thread MainThread" and "thread QueueFeederThread" in names
        assert all(c.kind == "thread" for c in node.children)
        main = node.children[0]
        assert main.children[0].name == "_worker_loop"
        feeder = node.children[names.index("thread QueueFeederThread")]
        assert any(c.name == "reduce_tensor" for c in feeder.walk())  # the batch pickled for the main process
    return nodes


def test_fork_workers_are_traced_and_every_batch_is_linked(tmp_path):
    dl = loader()
    with tracer.trace(workers=True) as t:
        batches = [b for b in dl]
    assert len(batches) == 4
    nodes = check_worker_nodes(t, "fork")
    check_batches_linked(t, 4)
    assert sorted(f.batch for f in fetches(t)) == [0, 1, 2, 3]
    fetch = t.batch(2)[1]
    assert fetch.children[-1].name == "default_collate"
    assert [c.name for c in fetch.ancestors()][:3] == ["_worker_loop", "thread MainThread", "worker 0"]
    # the worker nodes sit among the main thread's calls, ordered by start time
    starts = [c.start_ns for c in t.root.children]
    assert starts == sorted(starts) and all(n in t.root.children for n in nodes)
    text = t.to_text()
    assert "batch=2, self=_MapDatasetFetcher" in text and "batch=2, self=_MultiProcessingDataLoaderIter" in text
    assert "worker 1 [worker]  pid=" in text and "thread QueueFeederThread [thread]" in text
    # Perfetto: a process track per worker (its pid), thread names, one flow per batch
    perfetto = json.loads(t.to_perfetto())["traceEvents"]
    names = {(e["pid"], e["args"]["name"]) for e in perfetto if e.get("name") == "process_name"}
    assert {(int(n.args["pid"]), f"{n.name} (pid {n.args['pid']}, fork)") for n in nodes} <= names
    assert {e["args"]["name"] for e in perfetto if e.get("name") == "thread_name"} >= {"MainThread", "QueueFeederThread"}
    flows = [e for e in perfetto if e.get("cat") == "batch"]
    assert sorted(e["ph"] for e in flows) == ["f"] * 4 + ["s"] * 4
    assert {e["pid"] for e in flows if e["ph"] == "s"} == {int(n.args["pid"]) for n in nodes}
    # JSON keeps the nodes and the links
    loaded = tracer.load(t.to_json(tmp_path / "t.json"))
    assert [w.args for w in loaded.workers] == [w.args for w in nodes]
    assert [(m.batch, f.batch) for m, f in loaded.batches()] == [(m.batch, f.batch) for m, f in t.batches()]
    assert "batch=2" in tracer.render.html._args_text(t.batch(2)[0])


def test_spawn_persistent_workers_are_one_node_each_over_two_epochs():
    dl = loader(method="spawn", persistent_workers=True)
    with tracer.trace(workers=True) as t:
        first = [b for b in dl]
        second = [b for b in dl]
    assert len(first) == len(second) == 4
    nodes = check_worker_nodes(t, "spawn")
    assert len({n.args["pid"] for n in nodes}) == 2
    check_batches_linked(t, 8)
    assert sorted(f.batch for f in fetches(t)) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert t.batch(0, epoch=1)[1].start_ns > t.batch(3, epoch=0)[0].start_ns  # the second epoch's batch 0
    # read at the block's end, with the loader (and its workers) still alive
    assert dl._iterator is not None and all(w.is_alive() for w in dl._iterator._workers)
    assert sum("still running when the block ended" in note for note in t.meta["notes"]) == 2


def test_forkserver_workers_are_traced():
    with tracer.trace(workers=True) as t:
        batches = [b for b in loader(method="forkserver")]
    assert len(batches) == 4
    check_worker_nodes(t, "forkserver")
    check_batches_linked(t, 4)


def test_non_persistent_workers_get_new_nodes_each_epoch():
    dl = loader()
    with tracer.trace(workers=True) as t:
        for _ in range(2):
            assert len([b for b in dl]) == 4
    nodes = t.workers
    assert [n.name for n in nodes] == ["worker 0", "worker 0", "worker 1", "worker 1"]
    assert len({n.args["pid"] for n in nodes}) == 4
    assert nodes[0].start_ns < nodes[1].start_ns
    check_batches_linked(t, 8)


def test_iterable_dataset_sharded_by_worker_info():
    dl = loader(workers_data.Shards(12), batch_size=2)
    with tracer.trace(workers=True, include=("torch", "workers_data")) as t:  # the include set applies in workers
        values = sorted(float(x) for b in dl for x in b.flatten())
    assert values == [float(i) for i in range(12)]
    shards = {}
    for node in t.workers:
        fetched = [c for c in node.walk() if c.name == "_IterableDatasetFetcher.fetch"]
        shards[node.args["worker_id"]] = fetched
        assert [c.name for c in node.walk() if c.name == "Shards.__iter__"]
    assert all(len(f) >= 3 for f in shards.values())  # three batches each, then the one that ends its shard
    linked = [(m, f) for m, f in t.batches() if m is not None]
    assert len(linked) == 6 and all(f is not None and f.name == "_IterableDatasetFetcher.fetch" for m, f in linked)
    assert not [note for note in t.meta["notes"] if "raised" in note]  # a shard's end is no error


def test_a_worker_that_raises_propagates_as_torch_does_and_the_trace_keeps_the_rest():
    dl = loader(workers_data.Squares(fail_at=9))  # batch 2: items 8-11, worker 0
    got = []
    with pytest.raises(ValueError, match="item 9 is broken"):
        with tracer.trace(workers=True) as t:
            for b in dl:
                got.append(b)
    assert len(got) == 2
    main, fetch = t.batch(2)
    assert fetch.error and fetch.name == "_MapDatasetFetcher.fetch"
    assert main is not None and main.error  # its type is known on 3.12+ (setprofile sees only that it raised)
    assert t.batch(1) != (None, None) and all(t.batch(1))
    assert any("batch 2 raised" in note and "worker 0" in note for note in t.meta["notes"])


def test_a_killed_worker_is_noted_and_the_others_kept(tmp_path):
    # Worker 1 blocks in batch 5; once batch 4 is in, every batch it sent has been received. It is killed
    # once it is inside that item (the file says so), never between two tasks: there it may hold the lock
    # of the loader's shared done event, and the main process would wait on that lock for ever.
    hanging = tmp_path / "hanging"
    dl = loader(workers_data.Squares(32, hang_at=21, hang_file=str(hanging)))
    got = []
    # torch says "is killed by signal" (its SIGCHLD handler) or "exited unexpectedly" (its status poll)
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid.*\) (is killed by signal|exited unexpectedly)"):
        with tracer.trace(workers=True) as t:
            it = iter(dl)
            for b in it:
                got.append(b)
                if len(got) == 5:
                    wait_for(hanging.exists)
                    os.kill(it._workers[1].pid, signal.SIGKILL)
    del it
    gc.collect()  # the iterator shuts its other worker down now, not in a later test
    assert len(got) == 5
    assert all(t.batch(i)[0] is not None and t.batch(i)[1] is not None for i in range(5))
    killed = t.workers[1]
    assert any(f"worker 1 (pid {killed.args['pid']}) was killed by SIGKILL" in n for n in t.meta["notes"])
    assert [f.batch for f in killed.walk() if f.name.endswith("Fetcher.fetch")][:2] == [1, 3]


def test_a_worker_terminated_after_the_shutdown_join_keeps_what_it_streamed(tmp_path):
    # Breaking out early shuts the workers down; worker 0 is stuck in __getitem__, so after the 5 s join the
    # DataLoader terminates it, and torch's SIGTERM handler calls _exit: no finally runs in that worker.
    hanging = tmp_path / "hanging"
    dl = loader(workers_data.Squares(hang_at=8, hang_file=str(hanging)), prefetch_factor=1)
    with tracer.trace(workers=True) as t:
        it = iter(dl)
        first = next(it)
        wait_for(hanging.exists)
        del it
    assert first.shape == (4, 1)
    stuck = t.workers[0]
    assert any(f"worker 0 (pid {stuck.args['pid']}) ended without closing its trace (exit code 0)" in n
               for n in t.meta["notes"]), t.meta["notes"]
    assert [f.batch for f in stuck.walk() if f.name.endswith("Fetcher.fetch")][:1] == [0], t.meta["notes"]


def test_timeout_option():
    with tracer.trace(workers=True) as t:
        assert len([b for b in loader(timeout=30)]) == 4
    check_batches_linked(t, 4)


def test_results_seeds_and_worker_init_fn_are_unchanged():
    def run(traced):
        torch.manual_seed(1234)
        dl = loader(workers_data.Noisy(), batch_size=2, worker_init_fn=workers_data.mark_worker)
        if not traced:
            return torch.cat([b for b in dl])
        with tracer.trace(workers=True):
            return torch.cat([b for b in dl])
    plain, traced = run(False), run(True)
    assert torch.equal(plain, traced)
    assert set(traced[:, 3].tolist()) == {1.0}  # worker_init_fn ran once in each worker


def test_nested_traces_and_patches_undone():
    originals = (worker_module._worker_loop, _MultiProcessingDataLoaderIter.__dict__["_next_data"],
                 _MultiProcessingDataLoaderIter.__dict__["__init__"])
    with tracer.trace(workers=True) as outer:
        with tracer.trace(workers=True) as inner:
            assert len([b for b in loader()]) == 4
        assert len([b for b in loader()]) == 4
        later = loader()
    assert (worker_module._worker_loop, _MultiProcessingDataLoaderIter.__dict__["_next_data"],
            _MultiProcessingDataLoaderIter.__dict__["__init__"]) == originals
    assert "_get_data" in _MultiProcessingDataLoaderIter.__dict__ and not workers._ACTIVE
    assert len(inner.workers) == 2 and len(outer.workers) == 4
    check_batches_linked(inner, 4)
    check_batches_linked(outer, 8)
    # built in the block, iterated after it: not traced
    assert len([b for b in later]) == 4
    assert worker_module._worker_loop is originals[0]


def test_persistent_workers_stop_recording_when_the_block_ends():
    dl = loader(persistent_workers=True)
    with tracer.trace(workers=True) as t:
        assert len([b for b in dl]) == 4
    assert len(t.workers) == 2 and not workers._ACTIVE
    assert len([b for b in dl]) == 4  # the epoch after the block runs as usual, untraced
    with tracer.trace(workers=True) as again:
        assert len([b for b in dl]) == 4  # an iterator made before this block: its workers are not traced
    assert again.workers == []
    assert any("started before the block" in note for note in again.meta["notes"])
    del dl


def test_workers_must_be_a_bool():
    with pytest.raises(TypeError, match="workers must be True or False"):
        tracer.trace(workers="yes")
    with pytest.raises(TypeError, match="workers must be True or False"):
        tracer.trace(workers=1)


def test_no_worker_started_is_said():
    with tracer.trace(workers=True) as t:
        assert len([b for b in loader(num_workers=0)]) == 4
    assert t.workers == [] and any("no DataLoader worker process started" in n for n in t.meta["notes"])


@pytest.mark.skipif(sys.platform != "linux", reason="the stream reader's liveness check reads /proc")
def test_alive_says_a_zombie_is_not_running():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        wait_for(lambda: not workers._alive(pid))  # it has exited, and nobody reaped it yet
    finally:
        os.waitpid(pid, 0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="pin_memory starts its thread only with an accelerator")
def test_pin_memory_thread_keeps_the_batch_links():
    # The pin-memory thread runs in the main process and is not traced; _get_data hands on what it pinned.
    with tracer.trace(workers=True) as t:
        batches = [b for b in loader(pin_memory=True)]
    assert all(b.is_pinned() for b in batches)
    check_batches_linked(t, 4)
