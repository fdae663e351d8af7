def names_registered(build):
    """The names the global parameter-registration hook sees while build() runs."""
    names = []
    handle = nn.modules.module.register_module_parameter_registration_hook(
        lambda module, name, param: names.append(name))
    try:
        build()
    finally:
        handle.remove()
    return names


tracer.claim_equal("building nn.Linear registers weight, then bias", names_registered(lambda: nn.Linear(3, 2)),
                   ["weight", "bias"])
tracer.claim_equal("with bias=False the hook sees the weight only: a None parameter runs no hook",
                   names_registered(lambda: nn.Linear(3, 2, bias=False)), ["weight"])
