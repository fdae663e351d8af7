def double_input(module, args):
    return (args[0] * 2,)


def output_with_doubled_input(training):
    """The model's output without and with the pre-hook, in training or eval mode, and the hooked call's trace."""
    model.train(training)
    plain = model(x)
    handle = model.conv.register_forward_pre_hook(double_input)
    with tracer.trace(include=WITH_MODEL) as trace:
        hooked = model(x)
    handle.remove()
    return plain, hooked, trace


plain_output, hooked_output, t_ex1 = output_with_doubled_input(training=False)
tracer.claim_equal("one pre-hook on conv: one module takes the hooked path", hooked_modules(t_ex1), ["Conv2d"])
tracer.claim("in eval mode, the pre-hook's doubled input changes the output",
             not torch.allclose(plain_output, hooked_output))
train_plain, train_hooked, _ = output_with_doubled_input(training=True)
tracer.claim("in training mode batch norm undoes the doubling: the output hardly changes",
             torch.allclose(train_plain, train_hooked, atol=1e-4))
model.train();
