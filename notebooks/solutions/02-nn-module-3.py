def global_pre_hook(module, args):
    return None


global_handle = nn.modules.module.register_module_forward_pre_hook(global_pre_hook)
with tracer.trace(include=WITH_MODEL) as t_ex3:
    model(x)
global_handle.remove()
print(t_ex3.to_text(depth=3, args=False))
tracer.claim_equal("a global pre-hook: one inner() per module", len(hooked_modules(t_ex3)), modules_in_model)
tracer.claim_equal("and one is_compiling() per module", t_ex3.count("is_compiling"), modules_in_model)
tracer.claim_equal("the outer module's inner() runs first: the model's", hooked_modules(t_ex3)[0], type(model).__name__)
