layer = nn.BatchNorm1d(2, momentum=0.5)
three = [torch.randn(4, 2) for _ in range(3)]
expected_var = torch.ones(2)
for batch in three:
    layer(batch)
    expected_var = (1 - layer.momentum) * expected_var + layer.momentum * batch.var(0, correction=1)
tracer.claim("running_var follows the momentum rule with the unbiased variance",
             torch.allclose(layer.running_var, expected_var))
