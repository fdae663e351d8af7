mine = models.resnet18().state_dict()  # random weights, NOT ImageNet's
with temporary_torch_home() as home:
    target = home / "hub" / "checkpoints" / Path(ResNet18_Weights.DEFAULT.url).name
    target.parent.mkdir(parents=True)
    target.write_bytes(checkpoint_bytes(mine))
    tracer.claim("torch.hub will read my file for the DEFAULT weights",
                 where_hub_looks(ResNet18_Weights.DEFAULT.url) == target and target.is_file())
    before = cache_identity(target)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        by_name = models.get_model("resnet18", weights="DEFAULT")
    tracer.claim("get_model with weights='DEFAULT' loaded my tensors", loaded_from(by_name, mine))
    tracer.claim_equal("nothing was downloaded", ("Downloading" in out.getvalue(), cache_identity(target)),
                       (False, before))
