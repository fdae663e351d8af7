off, _ = trace_import_calls(os.path.join(os.path.dirname(TRACE_FILE), "autoload-off.json"),
                            env={"TORCH_DEVICE_BACKEND_AUTOLOAD": "0"})
seen = {name: bool(off.find(name)) for name in ("torch._is_device_backend_autoload_enabled",
                                                "torch._import_device_backends")}
print(seen)
print(tracer.diff(t, off))
tracer.claim_equal("with TORCH_DEVICE_BACKEND_AUTOLOAD=0 the switch is consulted and no backend is imported",
                   seen, {"torch._is_device_backend_autoload_enabled": True, "torch._import_device_backends": False})
