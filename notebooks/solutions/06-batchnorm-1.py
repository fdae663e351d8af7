layer = nn.BatchNorm1d(3, track_running_stats=False).eval()
sample = torch.randn(4, 3)
with tracer.trace(layers=("python", "aten")) as t_ex1:
    layer(sample)
print(t_ex1.to_text(args=False))
tracer.claim_equal("without buffers, eval still checks the batch size", t_ex1.count("_verify_batch_size"), 1)
tracer.claim_equal("and the operator gets training=True", op_args(t_ex1)["training"], "True")
