found = it.find("numpy")
if found:
    numpy = found[0]
    print(f"numpy: under {numpy.parent.name}, {numpy.cumulative_us / 1000:.1f} ms, "
          f"{numpy.cumulative_us / it.total_us:.0%} of import torch, {len(numpy.imported())} modules")
    tracer.claim_equal("numpy is first imported by torch._C's import", numpy.parent.name, "torch._C")
else:
    tracer.skip("numpy is first imported by torch._C's import", "numpy is not installed here")
