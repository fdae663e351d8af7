stack_input = torch.randn(5, 6)
stack = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))
with tracer.trace() as t_stack:
    stack(stack_input)
widths = [stack_input.shape[-1]] + [layer.out_features for layer in stack if isinstance(layer, nn.Linear)]
materialized = t_stack.count("UninitializedTensorMixin.materialize")
elements = sum(p.numel() for p in stack.parameters())
print(f"materialize ran {materialized} times, _infer_parameters {t_stack.count('LazyModuleMixin._infer_parameters')}; "
      f"the model holds {elements} parameter elements")
tracer.claim_equal("materialize runs once per weight and bias of both lazy layers",
                   materialized, len(list(stack.parameters())))
tracer.claim_equal("_infer_parameters runs once per lazy layer", t_stack.count("LazyModuleMixin._infer_parameters"),
                   sum(isinstance(layer, nn.Linear) for layer in stack))
tracer.claim_equal(f"the parameter count follows from the widths {' -> '.join(map(str, widths))}",
                   elements, sum(n_in * n_out + n_out for n_in, n_out in zip(widths, widths[1:])))
