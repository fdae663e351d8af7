eps = full["eps"]
rows = []
for start, stop in SLICES:
    part = full["x"][start:stop]
    mean_part, invstd_part = worker.stats_stand_in(part, eps)
    count = torch.full((1,), part.numel() // part.size(1), dtype=part.dtype)
    rows.append(torch.cat([mean_part, invstd_part, count]))
gathered = torch.stack(rows)
channels = full["x"].shape[1]
means, counts = gathered[:, :channels], gathered[:, -1:]
global_mean = (means * counts).sum(0) / counts.sum()
reference_mean = reference.running_mean / full["momentum"]
tracer.claim("the count-weighted mean of the rows is the batch mean BatchNorm2d used",
             torch.allclose(global_mean, reference_mean))
tracer.claim("the plain mean of the rows is not (the slices are uneven)", not torch.allclose(means.mean(0), reference_mean))
