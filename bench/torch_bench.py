#!/usr/bin/env python3
"""PyTorch + transformers side of `cargo xtask bench`: the same work as `prunelab bench ...`.

Subcommands (each prints one JSON object):
  train MODEL_DIR [--batch-size 32 --seq-len 128 --steps 50 --precision f32|tf32|bf16 --compile]
      AutoModelForSequenceClassification from the directory prunelab wrote (identical weights),
      synthetic batches of fixed length, AdamW (decay groups as prunelab), global-norm clip 1.0,
      linear schedule; time to the first step and samples/s over the following steps.
  infer MODEL_DIR [--batch-size 64 --seq-len 128 --batches 20 --precision ...]
  prune MODEL_DIR [--amount 0.9]
      torch.nn.utils.prune.global_unstructured(L1Unstructured) over the attention/MLP matrices
      (GPT-2's Conv1D included), as prunelab's default scope.
  matmul [--n 8192 --iters 10 --precision f32|tf32|bf16|f16]
"""

import argparse
import contextlib
import json
import os
import sys
import time

import torch
import transformers
from safetensors.torch import load_file
from torch.nn.utils import prune


# Batches whose predictions stay on the device before one read (prunelab's `predict` reads every 8;
# TORCH_READ_EVERY=1 reads after every batch, as this script did before 2026-12-06).
READ_EVERY = int(os.environ.get("TORCH_READ_EVERY", "8"))

def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def phase_marker():
    """With PRUNELAB_PHASES set, under bench/cupti_busy.c (CUDA_INJECTION64_PATH): wait for the
    device, then tell the counter which phase begins, as prunelab does; else nothing."""
    if not os.environ.get("PRUNELAB_PHASES"):
        return lambda name: None
    import ctypes

    lib = ctypes.CDLL(os.environ["CUDA_INJECTION64_PATH"])

    def mark(name):
        sync()
        lib.cupti_busy_phase(name.encode())

    return mark


def device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_precision(p):
    tf32 = p == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    if p == "bf16":
        return lambda: torch.autocast(device().type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def load(model_dir):
    config = transformers.AutoConfig.from_pretrained(model_dir, num_labels=2)
    model = transformers.AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    for name in ("model.safetensors", "model.fp16.safetensors"):
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            state = {k: v.float() for k, v in load_file(path).items()}
            break
    else:
        sys.exit(f"no weights in {model_dir}")
    prefix = model.base_model_prefix + "."
    if not any(k.startswith(prefix) for k in state):
        state = {prefix + k: v for k, v in state.items()}
    model.load_state_dict(state, strict=False)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = 0
    return model.to(device())


def synthetic(n, seq, vocab, gen):
    ids = torch.randint(1000, vocab, (n, seq), generator=gen)
    labels = torch.randint(0, 2, (n,), generator=gen)
    return ids, labels


def hardware():
    """The machine, as prunelab's records name it: GPU name and count, CPU model, threads."""
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None)
    except OSError:
        pass
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"gpu": torch.cuda.get_device_name() if gpus else None, "gpu_count": gpus, "cpu": cpu,
            "threads": torch.get_num_threads()}


def record(kind, args, **kw):
    out = {"tool": "torch", "bench": kind, "torch": torch.__version__, "transformers": transformers.__version__,
           "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "hardware": hardware()}
    out.update({k: v for k, v in vars(args).items() if k not in ("cmd",)})
    out.update(kw)
    return out


def train(args):
    autocast = set_precision(args.precision)
    model = load(args.model)
    model.train()
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    no_decay = lambda n: n.endswith("bias") or "LayerNorm" in n or "ln_" in n
    params = list(model.named_parameters())
    opt = torch.optim.AdamW(
        [{"params": [p for n, p in params if not no_decay(n)], "weight_decay": 0.01},
         {"params": [p for n, p in params if no_decay(n)], "weight_decay": 0.0}],
        lr=2e-5, betas=(0.9, 0.999), eps=1e-8)
    total = args.steps + 1
    sched = transformers.get_linear_schedule_with_warmup(opt, 0, total)
    step_fn = model
    if args.compile:
        step_fn = torch.compile(model)
    ids, labels = synthetic(args.batch_size * total, args.seq_len, vocab, gen)
    mask = torch.ones_like(ids)
    dev = device()
    mark = phase_marker()

    def step(i):
        s = slice(i * args.batch_size, (i + 1) * args.batch_size)
        mark("forward")
        with autocast():
            loss = step_fn(input_ids=ids[s].to(dev), attention_mask=mask[s].to(dev), labels=labels[s].to(dev)).loss
        mark("backward")
        loss.backward()
        mark("norm")
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        mark("update")
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        mark("other")
        return loss

    sync()
    t = time.perf_counter()
    step(0)
    sync()
    first = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(1, total):
        loss = step(i)
        if i % 50 == 0:
            loss.item()
    sync()
    seconds = time.perf_counter() - t
    sps = args.batch_size * args.steps / seconds
    return record("train", args, first_step_seconds=first, samples_per_second=sps, step_ms=1e3 * seconds / args.steps)


def infer(args):
    autocast = set_precision(args.precision)
    model = load(args.model)
    model.eval()
    gen = torch.Generator().manual_seed(0)
    ids, _ = synthetic(args.batch_size * args.batches, args.seq_len, model.config.vocab_size, gen)
    mask = torch.ones_like(ids)
    dev = device()
    fn = torch.compile(model) if args.compile else model

    def run(n):
        # Predictions read back every READ_EVERY batches, as prunelab's `predict` does.
        out, pending = [], []
        with torch.no_grad(), autocast():
            for i in range(n):
                s = slice(i * args.batch_size, (i + 1) * args.batch_size)
                pending.append(fn(input_ids=ids[s].to(dev), attention_mask=mask[s].to(dev)).logits.argmax(-1))
                if len(pending) == READ_EVERY or i == n - 1:
                    out += torch.cat(pending).tolist()
                    pending = []
        return out

    t = time.perf_counter()
    run(min(2, args.batches))
    warm = time.perf_counter() - t
    t = time.perf_counter()
    run(args.batches)
    seconds = time.perf_counter() - t
    params = sum(p.numel() for p in model.parameters())
    return record("infer", args, warmup_seconds=warm, samples_per_second=args.batch_size * args.batches / seconds, parameters=params)


def prune_bench(args):
    model = load(args.model).cpu()
    targets = []
    for name, m in model.named_modules():
        is_conv1d = type(m).__name__ == "Conv1D"
        if (isinstance(m, torch.nn.Linear) or is_conv1d) and (".layer." in name or ".h." in name):
            targets.append((m, "weight"))
    n = sum(m.weight.numel() for m, _ in targets)
    t = time.perf_counter()
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=args.amount)
    seconds = time.perf_counter() - t
    return record("prune", args, scope_params=n, total_seconds=seconds, device_used="cpu")


def matmul(args):
    set_precision(args.precision)
    dtype = {"f32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[args.precision]
    dev = device()
    a = torch.randn(args.n, args.n, device=dev, dtype=dtype)
    b = torch.randn(args.n, args.n, device=dev, dtype=dtype)
    for _ in range(3):
        a @ b
    sync()
    t = time.perf_counter()
    for _ in range(args.iters):
        a @ b
    sync()
    seconds = (time.perf_counter() - t) / args.iters
    return record("matmul", args, tflops=2 * args.n**3 / seconds / 1e12)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("model")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--seq-len", type=int, default=128)
    t.add_argument("--steps", type=int, default=50)
    t.add_argument("--precision", default="f32", choices=["f32", "tf32", "bf16"])
    t.add_argument("--compile", action="store_true")
    i = sub.add_parser("infer")
    i.add_argument("model")
    i.add_argument("--batch-size", type=int, default=64)
    i.add_argument("--seq-len", type=int, default=128)
    i.add_argument("--batches", type=int, default=20)
    i.add_argument("--precision", default="f32", choices=["f32", "tf32", "bf16"])
    i.add_argument("--compile", action="store_true")
    r = sub.add_parser("prune")
    r.add_argument("model")
    r.add_argument("--amount", type=float, default=0.9)
    m = sub.add_parser("matmul")
    m.add_argument("--n", type=int, default=8192)
    m.add_argument("--iters", type=int, default=10)
    m.add_argument("--precision", default="f32", choices=["f32", "tf32", "bf16", "f16"])
    args = p.parse_args()
    out = {"train": train, "infer": infer, "prune": prune_bench, "matmul": matmul}[args.cmd](args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
