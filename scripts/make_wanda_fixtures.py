#!/usr/bin/env python3
"""Wanda references (Sun et al. 2023) for prunelab's tests, computed with PyTorch + transformers on
the committed tiny fixtures `bert-tiny` and `gpt2-tiny` (read, not remade).

For each model: a few calibration sequences (seeded token ids, batch 1, so no padding) go through
the model in eval mode with a forward pre-hook on every projection of the default scope
(BERT's `nn.Linear` attention and MLP modules, GPT-2's `Conv1D` ones); the L2 norm of each input
feature over all tokens is ‖X_j‖₂, and the masks follow the reference code of Wanda
(`lib/prune.py`, unstructured): score |W_ij|·‖X_j‖₂ in torch's `[out, in]` view of the weight,
per output row the `int(in · amount)` lowest scores pruned (a stable sort: ties by the lower
input index). Written to `<model>/wanda-reference.safetensors`: `ids.<i>` (the calibration
sequences), `norms.<weight key>` and `masks-<percent>.<weight key>` (uint8, in the checkpoint's
layout: `[out, in]` for `nn.Linear`, `[in, out]` for GPT-2's `Conv1D`).

    python3 scripts/make_wanda_fixtures.py --fixtures crates/prunelab-models/tests/fixtures
"""

import argparse
import os

import torch
import transformers
from safetensors.torch import save_file

torch.backends.cuda.matmul.allow_tf32 = False
torch.use_deterministic_algorithms(True)

AMOUNTS = [0.5, 0.9]
LENGTHS = [7, 12, 5, 9]


def projections(model):
    """(module name, module, whether its weight is [in, out]) of the default scope."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and ".encoder.layer." in f".{name}":
            out.append((name, m, False))
        elif type(m).__name__ == "Conv1D" and ".h." in f".{name}":
            out.append((name, m, True))
    return out


def wanda(model_dir, vocab_low, vocab_high, seed):
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, attn_implementation="eager").eval()
    gen = torch.Generator().manual_seed(seed)
    squares, handles = {}, []
    for name, module, _ in projections(model):
        def hook(_, args, name=name):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            squares[name] = squares.get(name, 0) + (x * x).sum(0)
        handles.append(module.register_forward_pre_hook(hook))
    ref = {}
    with torch.no_grad():
        for i, n in enumerate(LENGTHS):
            ids = torch.randint(vocab_low, vocab_high, (1, n), generator=gen)
            ref[f"ids.{i}"] = ids[0]
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
    for h in handles:
        h.remove()
    for name, module, conv1d in projections(model):
        norms = squares[name].sqrt().float()
        ref[f"norms.{name}.weight"] = norms
        weight = module.weight.detach()
        w = weight.t() if conv1d else weight  # [out, in]
        metric = w.abs() * norms.unsqueeze(0)
        order = torch.sort(metric, dim=-1, stable=True)[1]
        for amount in AMOUNTS:
            mask = torch.ones_like(w, dtype=torch.uint8)
            mask.scatter_(1, order[:, : int(w.shape[1] * amount)], 0)
            ref[f"masks-{int(amount * 100)}.{name}.weight"] = (mask.t() if conv1d else mask).contiguous()
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(model_dir, "wanda-reference.safetensors"))
    print(f"wrote {model_dir}/wanda-reference.safetensors: {len(projections(model))} projections", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    wanda(os.path.join(args.fixtures, "bert-tiny"), 5, 99, 11)
    wanda(os.path.join(args.fixtures, "gpt2-tiny"), 0, 98, 12)


if __name__ == "__main__":
    main()
