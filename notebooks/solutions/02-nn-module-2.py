def bn_lookups(trace):
    """The attribute names BatchNorm's forward looked up through __getattr__."""
    bn_forward = trace.find("_BatchNorm.forward")[0]
    return [c.args["name"].strip("'") for c in bn_forward.walk() if c.name == "Module.__getattr__"]


train_names, eval_names = bn_lookups(t_train_forward), bn_lookups(t_eval_forward)
print("train:", train_names, "\neval: ", eval_names)
tracer.claim_equal("only the training forward looks up num_batches_tracked",
                   set(train_names) - set(eval_names), {"num_batches_tracked"})
