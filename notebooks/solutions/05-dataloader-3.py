deep = DataLoader(tagged, batch_size=2, num_workers=2, prefetch_factor=3, multiprocessing_context=FORK)
with tracer.trace(workers=True, include=WITH_DATASET) as t_deep:
    deep_batches = list(deep)
puts = in_main(t_deep, "*._try_put_index")
exhausted = sum(bool(c.error) for c in in_main(t_deep, "*._next_index"))
per_worker = [sum(c.name == "_MapDatasetFetcher.fetch" for c in w.walk())
              for w in sorted(t_deep.workers, key=lambda w: int(w.args["worker_id"]))]
print(f"_try_put_index: {len(puts)}, exhausted: {exhausted}, fetches per worker: {per_worker}")
primes = deep.prefetch_factor * deep.num_workers
tracer.claim_equal("prefetch_factor * num_workers primes plus one per batch", len(puts), primes + len(deep_batches))
tracer.claim_equal("every call past the fifth found the sampler exhausted", exhausted, len(puts) - len(deep_batches))
tracer.claim_equal("round robin: worker 0 fetched batches 0, 2, 4 and worker 1 batches 1, 3", per_worker,
                   [len(range(k, len(deep_batches), deep.num_workers)) for k in range(deep.num_workers)])
