drop_loader = DataLoader(points, batch_size=3, drop_last=True)
with tracer.trace(include=WITH_DATASET) as t_drop:
    drop_batches = list(drop_loader)
full_batches = len(points) // drop_loader.batch_size
counts = {name: t_drop.count(name) for name in ("_BaseDataLoaderIter.__next__", "_MapDatasetFetcher.fetch",
                                                "Points.__getitem__")}
print(counts)
tracer.claim_equal("one __next__ per full batch plus the one that stops; one fetch per full batch; "
                   "__getitem__ only for the points in full batches", list(counts.values()),
                   [full_batches + 1, full_batches, full_batches * drop_loader.batch_size])
