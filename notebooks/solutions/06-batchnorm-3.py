frozen = nn.BatchNorm1d(3, momentum=0.0)
before = {name: buffer.clone() for name, buffer in frozen.named_buffers()}
frozen(torch.randn(5, 3) * 3 + 2)
changed = {name for name, buffer in frozen.named_buffers() if not torch.equal(buffer, before[name])}
print("changed:", changed)
tracer.claim_equal("momentum=0.0: only num_batches_tracked changes", changed, {"num_batches_tracked"})
