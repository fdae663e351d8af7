def rename_dense(module, state_dict, prefix, *rest):
    for key in [k for k in state_dict if k.startswith(prefix + "dense.")]:
        state_dict[prefix + "fc." + key[len(prefix + "dense."):]] = state_dict.pop(key)


handle = renamed_target.register_load_state_dict_pre_hook(rename_dense)
renamed_result = renamed_target.load_state_dict(old_names)
handle.remove()
tracer.claim("with the keys renamed by the root's pre-hook, the strict load matches every key",
             not renamed_result.missing_keys and not renamed_result.unexpected_keys)
tracer.claim("fc got the values saved under dense", torch.equal(renamed_target.fc.weight, old_names["dense.weight"]))
tracer.claim("the caller's dict still has the old names: load_state_dict worked on a copy",
             "dense.weight" in old_names and "fc.weight" not in old_names)
