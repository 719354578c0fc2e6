#!/usr/bin/env python3
"""Check prunelab's exports with transformers: every exported directory must load with
`AutoModelForSequenceClassification.from_pretrained`, and for unstructured exports its weights
must equal the original model's weights times prunelab's masks (read in torch's layout), so the
logits are equal too.

    python3 scripts/check_export.py ORIGINAL_DIR EXPORT_RUN_DIR [ORIGINAL_DIR EXPORT_RUN_DIR ...]

EXPORT_RUN_DIR is a `prunelab prune --out` directory (model/ and masks.safetensors, or
model/ and structured.json). Exits non-zero on the first mismatch.
"""

import json
import os
import sys

import torch
import transformers
from safetensors.torch import load_file


def check(original_dir, run_dir):
    exported = transformers.AutoModelForSequenceClassification.from_pretrained(os.path.join(run_dir, "model")).eval()
    original = transformers.AutoModelForSequenceClassification.from_pretrained(original_dir).eval()
    masks_path = os.path.join(run_dir, "masks.safetensors")
    state = exported.state_dict()
    if os.path.exists(masks_path):
        masks = load_file(masks_path)
        reference = original.state_dict()
        worst = 0.0
        for key, value in state.items():
            expected = reference[key] * masks[key] if key in masks else reference[key]
            worst = max(worst, (value - expected).abs().max().item())
        zeros = sum(int((state[k] == 0).sum()) for k in masks)
        total = sum(masks[k].numel() for k in masks)
        ids = torch.randint(3, exported.config.vocab_size - 2, (2, 9), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            pruned = original
            for key, mask in masks.items():
                module, name = key.rsplit(".", 1)
                getattr(pruned.get_submodule(module), name).data.mul_(mask.to(torch.float32))
            a = exported(input_ids=ids).logits
            b = pruned(input_ids=ids).logits
        print(f"{run_dir}: loads; max |exported - original*mask| = {worst:.3g}; "
              f"{zeros}/{total} masked weights zero ({100 * zeros / total:.2f}%); logits max |diff| = {(a - b).abs().max().item():.3g}")
        assert worst == 0.0 and torch.equal(a, b)
    else:
        plan = json.load(open(os.path.join(run_dir, "structured.json")))
        shapes = {k: tuple(v.shape) for k, v in state.items() if "intermediate" in k or "c_fc" in k}
        print(f"{run_dir}: loads (structured, {plan['spec']}); {sum(v.numel() for v in state.values())} parameters; {shapes}")


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit(__doc__)
    print("transformers", transformers.__version__, "torch", torch.__version__)
    for original, run in zip(args[::2], args[1::2]):
        check(original, run)


if __name__ == "__main__":
    main()
