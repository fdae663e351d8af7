def split_range(worker_id):
    info = get_worker_info()
    copy = info.dataset
    size = math.ceil((copy.end - copy.start) / info.num_workers)
    copy.start, copy.end = copy.start + worker_id * size, min(copy.end, copy.start + (worker_id + 1) * size)


split_loader = DataLoader(Stream(0, 10), batch_size=3, num_workers=2, multiprocessing_context=FORK,
                          worker_init_fn=split_range)
with tracer.trace(workers=True, include=WITH_DATASET) as t_split:
    halves = collections.Counter(int(v) for batch in split_loader for v in batch)
tracer.claim_equal("split in worker_init_fn, every value is read once", halves, collections.Counter(range(10)))
loop_steps = [[c.name for c in w.walk() if c.parent is not None and c.parent.name == "_worker_loop"]
              for w in t_split.workers]
tracer.claim("in each worker, worker_init_fn ran after the seeding and before the fetcher was made",
             all(steps.index("manual_seed") < steps.index("split_range") < steps.index("_DatasetKind.create_fetcher")
                 for steps in loop_steps))
