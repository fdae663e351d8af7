try:
    with tracer.trace() as t_plain:
        box.scale = box.scale * 2
except TypeError as error:
    plain_error = error
print(f"TypeError: {plain_error}")
tracer.claim_equal("a plain tensor over a parameter: TypeError from __setattr__ itself",
                   raised(t_plain), [("Module.__setattr__", "TypeError")])
tracer.claim_equal("register_parameter is not reached", t_plain.count("Module.register_parameter"), 0)
