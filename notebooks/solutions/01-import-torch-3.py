nn_import = tracer.trace_import("torch.nn")
with_nn, plain = nn_import.imported(), it.imported()
tracer.claim("import torch.nn imports the same modules as import torch", with_nn == plain,
             detail=f"only with torch.nn: {sorted(with_nn - plain)}; only with torch: {sorted(plain - with_nn)}")
inside_torch = it.find("torch.nn")
tracer.claim("import torch imports torch.nn itself", bool(inside_torch))
print(f"import torch.nn: {nn_import.count} modules; in import torch, torch.nn is imported under "
      f"{inside_torch[0].parent.name if inside_torch else 'nothing'}")
