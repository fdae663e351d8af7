mine = models.resnet18().state_dict()  # random weights, NOT ImageNet's
with temporary_torch_home() as home:
    target = home / "hub" / "checkpoints" / Path(ResNet18_Weights.IMAGENET1K_V1.url).name
    target.parent.mkdir(parents=True)
    target.write_bytes(checkpoint_bytes(mine))
    tracer.claim("torch.hub will read my file for the V1 weights",
                 where_hub_looks(ResNet18_Weights.IMAGENET1K_V1.url) == target and target.is_file())
    with warnings.catch_warnings(record=True) as positional_warnings, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        positional = models.resnet18(True)
for w in positional_warnings:
    print(f"{w.category.__name__}: {w.message}\n")
messages = [str(w.message) for w in positional_warnings]
tracer.claim_equal("two warnings: the first from kwonly_to_pos_or_kw's wrapper, the second from inner_wrapper",
                   [issued_by(w) for w in positional_warnings], ["wrapper", "inner_wrapper"])
tracer.claim("the first says a positional 'weights' is deprecated (True was bound to weights)",
             "'weights' as positional parameter(s) is deprecated" in messages[0])
tracer.claim("the second maps it to IMAGENET1K_V1; none says 'pretrained' is deprecated",
             f"`weights={ResNet18_Weights.IMAGENET1K_V1}`" in messages[1]
             and not any("'pretrained' is deprecated" in m for m in messages))
tracer.claim("the model holds my tensors", loaded_from(positional, mine))
