fc_only = {key: value for key, value in donor.items() if key.startswith("fc.")}
part_result = part_target.load_state_dict(fc_only, strict=False)
outside_fc = [key for key in part_target.state_dict() if not key.startswith("fc.")]
tracer.claim_equal("without _metadata: every key outside fc but num_batches_tracked, which BatchNorm fills in",
                   part_result.missing_keys, [key for key in outside_fc if not key.endswith(".num_batches_tracked")])
tracer.claim("fc now holds the donor's values", torch.equal(part_target.fc.weight, donor["fc.weight"]))
fc_only_versioned = OrderedDict(fc_only)
fc_only_versioned._metadata = donor._metadata
tracer.claim_equal("with the donor's _metadata (BatchNorm at version 2): every key outside fc",
                   Net().load_state_dict(fc_only_versioned, strict=False).missing_keys, outside_fc)
