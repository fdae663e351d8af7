zero_init = models.resnet18(zero_init_residual=True).eval()
x = torch.relu(torch.randn(1, 64, 56, 56))
with torch.no_grad():
    through = zero_init.layer1[0](x)
tracer.claim("every block's bn2 weight is zero", all(not block.bn2.weight.any() for _, block in blocks_of(zero_init)))
tracer.claim("the block is the identity: relu(0 + x) is x for x >= 0", torch.equal(through, x))
with torch.no_grad():
    tracer.claim("a block of the default model is not", not torch.equal(model.layer1[0](x), x))
