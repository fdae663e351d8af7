with torch.no_grad(), tracer.trace(layers=("python", "aten")) as t_ex1:
    model50(image)
bottlenecks = sum(isinstance(m, resnet_py.Bottleneck) for m in model50.modules())
convs = sum(isinstance(m, nn.Conv2d) for m in model50.modules())
print(f"{t_ex1.count('aten::add_*')} add_, {t_ex1.count('aten::convolution')} convolutions")
tracer.claim_equal("one aten::add_ per Bottleneck", t_ex1.count("aten::add_*"), bottlenecks)
tracer.claim_equal("one aten::convolution per Conv2d: 1 stem + 3 per block + 4 shortcuts",
                   t_ex1.count("aten::convolution"), convs)
tracer.claim_equal("that is 1 + 3 x 16 + 4", convs, 1 + 3 * bottlenecks + len(with_shortcut(model50)))
