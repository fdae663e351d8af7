model34 = models.resnet34()
inplanes, rule = 64, []
for i, (stage, planes) in enumerate(zip(STAGES, (64, 128, 256, 512))):
    stride = 1 if i == 0 else 2
    if stride != 1 or inplanes != planes * resnet_py.BasicBlock.expansion:
        rule.append(f"{stage}.0")
    inplanes = planes * resnet_py.BasicBlock.expansion
print(with_shortcut(model34))
tracer.claim_equal("resnet34's shortcuts are where the rule puts them", with_shortcut(model34), rule)
tracer.claim_equal("resnet34's stages hold 3, 4, 6 and 3 blocks", [len(getattr(model34, s)) for s in STAGES],
                   [3, 4, 6, 3])
