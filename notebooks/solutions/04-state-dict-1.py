with tracer.trace(layers=("python", "builtin")) as t_nested:
    nested.load_state_dict(nested_state)
n_modules = len(list(nested.modules()))
n_batchnorms = sum(isinstance(m, nn.BatchNorm1d) for m in nested.modules())
tracer.claim_equal("load runs once per module", t_nested.count("Module.load_state_dict.<locals>.load"), n_modules)
tracer.claim_equal("_load_from_state_dict: once per module, plus BatchNorm's override",
                   t_nested.count("*_load_from_state_dict"), n_modules + n_batchnorms)
tracer.claim_equal("one copy_ per tensor in the checkpoint", len(copies(t_nested)), len(nested_state))
