#!/usr/bin/env python3
"""The PyTorch + transformers reference for `prunelab finetune`: the same recipe, a plain loop.

Fine-tunes a BERT-family checkpoint (e.g. all-MiniLM-L6-v2) for sequence classification on a
GLUE task read from the official TSV files, optionally after global L1 magnitude pruning of the
attention and MLP weight matrices (prunelab's `default` scope) with the masks held by
`torch.nn.utils.prune`'s forward pre-hooks. Recipe, as prunelab's defaults and the issue's check:
AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0.01 except biases and LayerNorm weights),
linear warm-up (ratio) then linear decay, global gradient-norm clip 1.0, dynamic padding to the
longest sequence of each batch, dev evaluation after every epoch (in the split's order, as
`Trainer` evaluates; `--eval-by-length-too` times it longest first as well), best epoch by the task's main
metric. `--precision bf16` runs forward and backward under `torch.autocast(bfloat16)` with f32
master weights.

Prints one JSON object (also written to `--out`): metrics per epoch, training samples/s per epoch,
eval throughput, time to the first step, the sparsity of the scope after training.

    python3 bench/torch_finetune.py --model DIR --glue DIR --task sst2 [--amount 0.9] --out r.json
"""

import argparse
import contextlib
import csv
import json
import math
import os
import random
import sys
import time

import torch
import transformers
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch.nn.utils import prune

TASKS = {"sst2": ("SST-2", "sentence", "accuracy"), "cola": ("CoLA", None, "mcc")}


def read_split(glue, task, split):
    folder, column, _ = TASKS[task]
    path = os.path.join(glue, folder, f"{split}.tsv")
    with open(path, newline="", encoding="utf-8") as f:
        if task == "cola":  # no header: source, label, original label, sentence
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
            return [r[3] for r in rows], [int(r[1]) for r in rows]
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        return [r[column] for r in rows], [int(r["label"]) for r in rows]


def load_model(model_dir, num_labels):
    config = transformers.AutoConfig.from_pretrained(model_dir, num_labels=num_labels)
    model = transformers.AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    for name in ("model.safetensors", "model.fp16.safetensors"):
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            state = {k: v.float() for k, v in load_file(path).items()}
            break
    else:
        sys.exit(f"no model.safetensors or model.fp16.safetensors in {model_dir}")
    prefix = model.base_model_prefix + "."
    if not any(k.startswith(prefix) for k in state):
        state = {prefix + k: v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    print(f"missing (new head): {missing}; unexpected: {unexpected}", file=sys.stderr)
    return model


def default_scope(model):
    """Attention and MLP weight matrices of every layer (prunelab's `default` scope)."""
    out = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layer." in name:
            out.append((name, module))
    return out


def batches(encodings, labels, order, batch_size, pad_id, device):
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        length = max(len(encodings[j]) for j in idx)
        ids = torch.full((len(idx), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), length), dtype=torch.long)
        for row, j in enumerate(idx):
            ids[row, : len(encodings[j])] = torch.tensor(encodings[j])
            mask[row, : len(encodings[j])] = 1
        yield ids.to(device), mask.to(device), torch.tensor([labels[j] for j in idx], device=device)


def scores(pred, gold):
    tp = sum(1 for p, g in zip(pred, gold) if p == 1 and g == 1)
    tn = sum(1 for p, g in zip(pred, gold) if p == 0 and g == 0)
    fp = sum(1 for p, g in zip(pred, gold) if p == 1 and g == 0)
    fn = sum(1 for p, g in zip(pred, gold) if p == 0 and g == 1)
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {"accuracy": (tp + tn) / len(gold), "mcc": (tp * tn - fp * fn) / denom if denom else 0.0}


def evaluate(model, enc, labels, batch_size, pad_id, device, autocast, by_length=False):
    """Scores and examples/s on the dev set, in batches of the split's order (as transformers'
    `Trainer` evaluates), or longest first (`by_length`, as prunelab's `predict` does)."""
    model.eval()
    order = sorted(range(len(enc)), key=lambda i: -len(enc[i])) if by_length else list(range(len(enc)))
    preds = []
    start = time.perf_counter()
    with torch.no_grad(), autocast():
        pending = []
        for ids, mask, _ in batches(enc, labels, order, batch_size, pad_id, device):
            # Read back every 8 batches, as prunelab's `predict` does.
            pending.append(model(input_ids=ids, attention_mask=mask).logits.argmax(-1))
            if len(pending) == 8:
                preds += torch.cat(pending).tolist()
                pending = []
        if pending:
            preds += torch.cat(pending).tolist()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    model.train()
    in_order = [0] * len(enc)
    for position, pred in zip(order, preds):
        in_order[position] = pred
    return scores(in_order, labels), len(enc) / seconds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--glue", required=True)
    p.add_argument("--task", choices=sorted(TASKS), required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.0)
    p.add_argument("--amount", type=float, default=0.0, help="global L1 sparsity of the default scope")
    p.add_argument("--precision", choices=["f32", "bf16"], default="bf16")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--train-limit", type=int)
    p.add_argument(
        "--eval-by-length-too",
        action="store_true",
        help="after each epoch's evaluation, time the dev set again longest first (eval_by_length_samples_per_second)",
    )
    p.add_argument("--out")
    args = p.parse_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = args.precision == "bf16" and (device.type != "cuda" or torch.cuda.is_bf16_supported())
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(args.max_length)
    pad_id = tok.token_to_id("[PAD]") or 0
    train_x, train_y = read_split(args.glue, args.task, "train")
    if args.train_limit:
        train_x, train_y = train_x[: args.train_limit], train_y[: args.train_limit]
    dev_x, dev_y = read_split(args.glue, args.task, "dev")
    train_enc = [e.ids for e in tok.encode_batch(train_x)]
    dev_enc = [e.ids for e in tok.encode_batch(dev_x)]

    model = load_model(args.model, 2).to(device)
    scope = default_scope(model)
    if args.amount > 0:
        prune.global_unstructured([(m, "weight") for _, m in scope], pruning_method=prune.L1Unstructured, amount=args.amount)

    no_decay = lambda n: n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n
    params = [(n, q) for n, q in model.named_parameters() if q.requires_grad]
    groups = [
        {"params": [q for n, q in params if not no_decay(n)], "weight_decay": args.weight_decay},
        {"params": [q for n, q in params if no_decay(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    steps_per_epoch = math.ceil(len(train_enc) / args.batch_size)
    total = steps_per_epoch * args.epochs
    sched = transformers.get_linear_schedule_with_warmup(opt, math.ceil(args.warmup_ratio * total), total)

    model.train()
    epochs, first_step = [], None
    t_run = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = list(range(len(train_enc)))
        random.shuffle(order)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss_sum, n = 0.0, 0
        for ids, mask, y in batches(train_enc, train_y, order, args.batch_size, pad_id, device):
            with autocast():
                loss = model(input_ids=ids, attention_mask=mask, labels=y).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            if first_step is None:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                first_step = time.perf_counter() - t_run
            loss_sum += loss.item()
            n += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        dev, eval_tput = evaluate(model, dev_enc, dev_y, args.eval_batch_size, pad_id, device, autocast)
        epochs.append({"epoch": epoch, "loss": loss_sum / max(n, 1), "seconds": seconds, "samples_per_second": len(order) / seconds, "dev": dev, "eval_samples_per_second": eval_tput})
        if args.eval_by_length_too:
            sorted_dev, sorted_tput = evaluate(model, dev_enc, dev_y, args.eval_batch_size, pad_id, device, autocast, by_length=True)
            epochs[-1]["eval_by_length_samples_per_second"] = sorted_tput
            epochs[-1]["dev_by_length"] = sorted_dev
        print(json.dumps(epochs[-1]), file=sys.stderr)

    main_metric = TASKS[args.task][2]
    best = max(epochs, key=lambda e: e["dev"][main_metric])
    zeros = sum(int((m.weight == 0).sum()) for _, m in scope)
    numel = sum(m.weight.numel() for _, m in scope)
    result = {
        "tool": "torch",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "task": args.task,
        "precision": "bf16" if bf16 else "f32",
        "amount": args.amount,
        "hyperparameters": {k: v for k, v in vars(args).items() if k not in ("model", "glue", "out")},
        "epochs": epochs,
        "best_epoch": best["epoch"],
        "main_metric": main_metric,
        "main": best["dev"][main_metric],
        "first_step_seconds": first_step,
        "scope_sparsity": zeros / numel,
        "scope_zeros": zeros,
        "scope_params": numel,
    }
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
