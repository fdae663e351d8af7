needed = torch.serialization.get_unsafe_globals_in_checkpoint(config_path)
by_name = {f"{obj.__module__}.{obj.__qualname__}": obj for obj in (TrainingConfig,)}
with torch.serialization.safe_globals([by_name[name] for name in needed]):
    colleague = torch.load(config_path)
tracer.claim_equal("the checkpoint needs exactly the reader's class", needed, [config_global])
tracer.claim("with it allowed for one call, the checkpoint loads", colleague["config"] == config
             and set(colleague["model"]) == set(state))
tracer.claim("and the allowlist is as before", TrainingConfig not in torch.serialization.get_safe_globals())
