class ByLabel:
    """Batches of two indices with the same label: the even points, then the odd ones."""

    def __init__(self, n, size=2):
        self.groups = [list(range(start, n, 2)) for start in (0, 1)]
        self.size = size

    def __iter__(self):
        for group in self.groups:
            for start in range(0, len(group), self.size):
                yield group[start:start + self.size]

    def __len__(self):
        return sum(math.ceil(len(group) / self.size) for group in self.groups)


by_label = DataLoader(points, batch_sampler=ByLabel(len(points)))
label_sets = [set(labels.tolist()) for _, labels in by_label]
tracer.claim("every batch holds one label", all(len(labels) == 1 for labels in label_sets))
tracer.claim_equal("the loader yields len(batch_sampler) batches", len(label_sets), len(ByLabel(len(points))))
try:
    DataLoader(points, batch_sampler=ByLabel(len(points)), shuffle=True)
except ValueError as error:
    shuffle_error = error
tracer.claim("with shuffle=True as well, DataLoader raises the batch_sampler conflict",
             re.fullmatch(source_text(DataLoader.__init__, BATCH_SAMPLER_CHECK), str(shuffle_error)) is not None)
