#!/usr/bin/env python3
"""Make prunelab's parity fixtures with PyTorch + Hugging Face transformers.

Builds tiny randomly initialised models from configs (seeded), saves each as a Hugging Face
checkpoint (config.json + model.safetensors), and writes inputs and reference outputs next to it
(`reference.safetensors`, f32): the embedding output and the output of every layer (captured with
forward hooks, so the meaning does not depend on transformers' `output_hidden_states`
conventions), the pooled output where the model has one, and the classification logits.

Longformer and LED pad the sequence internally to a multiple of the attention window and cut
the outputs back only at the end, so their encoder hooks see padded tensors; those are sliced back
to the input length here (the rows of window padding are internal to the model). transformers 5
has no `LEDForSequenceClassification` (removed in 5.0); the script rebuilds transformers 4's class
from `LEDModel` and `LEDClassificationHead` (same module names, same forward).
The DeBERTa groups (`deberta`, `deberta-v2`) use sequences of 20 tokens with right padding,
relative attention on and small relative ranges / 8 position buckets, so clamped and bucketed
distances are exercised; their references also keep transformers' own `hidden_states`. The
`deberta-v2` group also writes a DeBERTa-v2 `tokenizer.json` (Unigram over a tiny vocabulary) with
the ids transformers gives a few sentences.

It also writes the loader-format variants (sharded safetensors, `pytorch_model.bin`,
`model.fp16.safetensors`, a base-model checkpoint without head, GPT-2 in the Hub's `gpt2` layout)
and the masks `torch.nn.utils.prune.global_unstructured(L1Unstructured)` computes on the tiny
models, for the pruning parity tests. With `--minilm DIR` it also computes reference hidden states
of the real all-MiniLM-L6-v2 from its `model.fp16.safetensors` (upcast to f32) for a few
sentences tokenized with its `tokenizer.json`.

Run (torch and transformers installed; CPU is enough and is what the committed fixtures used):

    python3 scripts/make_fixtures.py --out crates/prunelab-models/tests/fixtures [--minilm DIR]

Everything is seeded; `versions.json` records the torch/transformers versions used.
"""

import argparse
import json
import os
import shutil
import sys
import traceback

import torch
import transformers
from safetensors.torch import save_file

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.use_deterministic_algorithms(True)

PAD = 0  # BERT-style pad id
AMOUNTS = [0.1, 0.5, 0.9]


def seeded(seed):
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def contiguous(tensors):
    return {k: v.detach().to(torch.float32 if v.is_floating_point() else v.dtype).contiguous().cpu() for k, v in tensors.items()}


def capture(model, embed_module, layers):
    """Forward hooks that store the embedding output and each layer's output."""
    store = {}
    handles = []

    def keep(name):
        def hook(_module, _inputs, output):
            store[name] = output[0] if isinstance(output, tuple) else output
        return hook

    handles.append(embed_module.register_forward_hook(keep("hidden.0")))
    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_hook(keep(f"hidden.{i + 1}")))
    return store, handles


def save_checkpoint(model, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")


# ---------------------------------------------------------------- BERT

def bert_inputs(gen, vocab):
    # Row 0: 12 tokens; row 1: a sentence pair with token types, padded; row 2: short, padded.
    ids = torch.randint(5, vocab, (3, 12), generator=gen)
    ids[:, 0] = 2  # [CLS]-like
    mask = torch.ones(3, 12, dtype=torch.long)
    types = torch.zeros(3, 12, dtype=torch.long)
    ids[1, 5] = 3
    types[1, 6:10] = 1
    ids[1, 9] = 3
    mask[1, 10:] = 0
    ids[1, 10:] = PAD
    mask[2, 5:] = 0
    ids[2, 5:] = PAD
    return ids, mask, types


def make_bert(out):
    gen = seeded(1)
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, num_labels=2, pad_token_id=PAD,
    )
    config._attn_implementation = "eager"
    model = transformers.BertForSequenceClassification(config).eval()
    ids, mask, types = bert_inputs(gen, config.vocab_size)
    store, handles = capture(model, model.bert.embeddings, model.bert.encoder.layer)
    with torch.no_grad():
        out_cls = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
        pooled = model.bert.pooler(store[f"hidden.{config.num_hidden_layers}"])
    for h in handles:
        h.remove()
    d = os.path.join(out, "bert-tiny")
    save_checkpoint(model, d)
    ref = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "pooled": pooled, "logits": out_cls.logits}
    ref.update(store)
    save_file(contiguous(ref), os.path.join(d, "reference.safetensors"))

    # Loader-format variants of the same weights.
    sharded = os.path.join(out, "bert-tiny-sharded")
    os.makedirs(sharded, exist_ok=True)
    model.save_pretrained(sharded, max_shard_size="40KB")
    binary = os.path.join(out, "bert-tiny-bin")
    os.makedirs(binary, exist_ok=True)
    shutil.copy(os.path.join(d, "config.json"), binary)
    torch.save(model.state_dict(), os.path.join(binary, "pytorch_model.bin"))
    fp16 = os.path.join(out, "bert-tiny-fp16")
    os.makedirs(fp16, exist_ok=True)
    shutil.copy(os.path.join(d, "config.json"), fp16)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, os.path.join(fp16, "model.fp16.safetensors"))
    # The base model alone (keys without the `bert.` prefix, no classifier): the head must be
    # initialised and reported.
    base = os.path.join(out, "bert-tiny-base")
    model.bert.save_pretrained(base)

    prune_masks(model, d, {
        "seed": [(m, n) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)],
        "default": [(m, n) for n, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and ".encoder.layer." in f".{n}"],
    })


# ---------------------------------------------------------------- GPT-2

def make_gpt2(out):
    gen = seeded(2)
    eos = 98
    config = transformers.GPT2Config(
        vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, activation_function="gelu_new",
        resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, layer_norm_epsilon=1e-5, bos_token_id=eos,
        eos_token_id=eos, pad_token_id=eos, num_labels=2,
    )
    config._attn_implementation = "eager"
    model = transformers.GPT2ForSequenceClassification(config).eval()
    d = os.path.join(out, "gpt2-tiny")
    save_checkpoint(model, d)
    ref = {}
    for side in ["right", "left"]:
        ids = torch.randint(0, eos, (3, 10), generator=gen)
        mask = torch.ones(3, 10, dtype=torch.long)
        for row, length in [(1, 7), (2, 3)]:
            if side == "right":
                ids[row, length:] = eos
                mask[row, length:] = 0
            else:
                ids[row, : 10 - length] = eos
                mask[row, : 10 - length] = 0
        store, handles = capture(model, model.transformer.drop, model.transformer.h)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
            final = model.transformer.ln_f(store[f"hidden.{config.n_layer}"])
        for h in handles:
            h.remove()
        ref[f"{side}.input_ids"] = ids
        ref[f"{side}.attention_mask"] = mask
        ref[f"{side}.logits"] = logits
        ref[f"{side}.final"] = final
        for k, v in store.items():
            ref[f"{side}.{k}"] = v
    save_file(contiguous(ref), os.path.join(d, "reference.safetensors"))

    # The Hub's `gpt2` layout: GPT2LMHeadModel weights without the `transformer.` prefix, the
    # causal-mask buffers `h.N.attn.bias` stored, no `score`.
    hub = os.path.join(out, "gpt2-tiny-hub")
    os.makedirs(hub, exist_ok=True)
    state = {k: v for k, v in model.transformer.state_dict().items()}
    n = config.n_positions
    for i in range(config.n_layer):
        state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.float32)).view(1, 1, n, n)
    save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(hub, "model.safetensors"))
    hub_config = json.loads(config.to_json_string())
    hub_config["architectures"] = ["GPT2LMHeadModel"]
    hub_config.pop("id2label", None)
    hub_config.pop("label2id", None)
    write_json(os.path.join(hub, "config.json"), hub_config)

    prune_masks(model, d, {
        # What the study pruned: nn.Linear modules only, i.e. GPT-2's `score` head alone.
        "seed": [(m, n) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)],
        # The corrected scope: the Conv1D attention and MLP weights of every block.
        "default": [(m, n) for n, m in model.named_modules()
                    if type(m).__name__ == "Conv1D" and ".h." in f".{n}"],
    })


# ---------------------------------------------------------------- Longformer and LED

ROBERTA_BOS, ROBERTA_PAD, ROBERTA_EOS = 0, 1, 2
LONG_LENGTHS = [22, 15, 7]  # several windows long; rows 1 and 2 right-padded
LONG_SEQ = max(LONG_LENGTHS)


def roberta_rows(gen, vocab):
    """`<s> ... </s>` rows of LONG_LENGTHS tokens (exactly one eos each), right-padded."""
    ids = torch.full((len(LONG_LENGTHS), LONG_SEQ), ROBERTA_PAD, dtype=torch.long)
    mask = torch.zeros(len(LONG_LENGTHS), LONG_SEQ, dtype=torch.long)
    for row, n in enumerate(LONG_LENGTHS):
        ids[row, :n] = torch.randint(3, vocab, (n,), generator=gen)
        ids[row, 0] = ROBERTA_BOS
        ids[row, n - 1] = ROBERTA_EOS
        mask[row, :n] = 1
    return ids, mask


def global_masks():
    """Global-attention cases: None (the model's default), the first token, and several global
    tokens with different counts per row (row 2 has none of its own, and one on a padding
    position, which the model must ignore)."""
    first = torch.zeros(len(LONG_LENGTHS), LONG_SEQ, dtype=torch.long)
    first[:, 0] = 1
    several = torch.zeros(len(LONG_LENGTHS), LONG_SEQ, dtype=torch.long)
    several[0, [0, 9, 17]] = 1
    several[1, [0, 5]] = 1
    several[2, 12] = 1  # padding: ignored
    return {"default": None, "first": first, "several": several}


def trimmed(store, seq):
    """Hooked outputs cut back to the input length (see the module docs)."""
    return {k: v[:, :seq] for k, v in store.items()}


def make_longformer(out):
    gen = seeded(3)
    config = transformers.LongformerConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=32, type_vocab_size=1, hidden_act="gelu", layer_norm_eps=1e-5,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.1,
        attention_window=[4, 6], pad_token_id=ROBERTA_PAD, bos_token_id=ROBERTA_BOS, eos_token_id=ROBERTA_EOS,
        sep_token_id=ROBERTA_EOS, num_labels=2,
    )
    config._attn_implementation = "eager"
    model = transformers.LongformerForSequenceClassification(config).eval()
    ids, mask = roberta_rows(gen, config.vocab_size)
    ref = {"input_ids": ids, "attention_mask": mask}
    for case, glob in global_masks().items():
        store, handles = capture(model, model.longformer.embeddings, model.longformer.encoder.layer)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, global_attention_mask=glob).logits
        for h in handles:
            h.remove()
        padded = store["hidden.0"].shape[1]
        assert padded % 6 == 0 and padded > LONG_SEQ, f"padded to {padded}"
        if glob is not None:
            ref[f"{case}.global_attention_mask"] = glob
        ref[f"{case}.logits"] = logits
        for k, v in trimmed(store, LONG_SEQ).items():
            ref[f"{case}.{k}"] = v
    d = os.path.join(out, "longformer-tiny")
    save_checkpoint(model, d)
    save_file(contiguous(ref), os.path.join(d, "reference.safetensors"))

    prune_masks(model, d, {
        "seed": [(m, n) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)],
        "default": [(m, n) for n, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and ".layer." in f".{n}"],
    })


# ---------------------------------------------------------------- RoBERTa

def make_roberta(out):
    gen = seeded(7)
    config = transformers.RobertaConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=LONG_SEQ + ROBERTA_PAD + 1, type_vocab_size=1, hidden_act="gelu",
        layer_norm_eps=1e-5, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.1,
        num_labels=2, pad_token_id=ROBERTA_PAD, bos_token_id=ROBERTA_BOS, eos_token_id=ROBERTA_EOS,
    )
    config._attn_implementation = "eager"
    model = transformers.RobertaForSequenceClassification(config).eval()
    ids, mask = roberta_rows(gen, config.vocab_size)
    store, handles = capture(model, model.roberta.embeddings, model.roberta.encoder.layer)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    for h in handles:
        h.remove()
    d = os.path.join(out, "roberta-tiny")
    save_checkpoint(model, d)
    ref = {"input_ids": ids, "attention_mask": mask, "logits": logits}
    ref.update(store)
    save_file(contiguous(ref), os.path.join(d, "reference.safetensors"))
    prune_masks(model, d, {
        "seed": [(m, n) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)],
        "default": [(m, n) for n, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and ".layer." in f".{n}"],
    })


class LEDForSequenceClassificationV4(torch.nn.Module):
    """transformers 4's `LEDForSequenceClassification` (removed in transformers 5), rebuilt from
    `LEDModel` and `LEDClassificationHead`: same module names, same forward (the decoder reads the
    input shifted right; the decoder state at the last eos token is classified)."""

    def __init__(self, config):
        super().__init__()
        from transformers.models.led.modeling_led import LEDClassificationHead

        self.config = config
        self.led = transformers.LEDModel(config)
        # Encoder and decoder read the shared token embeddings (transformers ties them).
        self.led.set_input_embeddings(self.led.shared)
        self.classification_head = LEDClassificationHead(
            config.d_model, config.d_model, config.num_labels, config.classifier_dropout)
        # transformers 4 initialised the head as every nn.Linear: N(0, init_std), zero bias.
        for m in self.classification_head.modules():
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.normal_(m.weight, 0.0, config.init_std)
                torch.nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask, global_attention_mask=None):
        outputs = self.led(input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask,
                           use_cache=False)
        hidden = outputs[0]
        eos_mask = input_ids.eq(self.config.eos_token_id)
        if len(torch.unique_consecutive(eos_mask.sum(1))) > 1:
            raise ValueError("All examples must have the same number of <eos> tokens.")
        pooled = hidden[eos_mask, :].view(hidden.size(0), -1, hidden.size(-1))[:, -1, :]
        return self.classification_head(pooled)


def make_led(out):
    from transformers.models.led.modeling_led import shift_tokens_right

    gen = seeded(4)
    config = transformers.LEDConfig(
        vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, max_encoder_position_embeddings=32,
        max_decoder_position_embeddings=32, attention_window=4, activation_function="gelu", dropout=0.1,
        attention_dropout=0.1, activation_dropout=0.1, classifier_dropout=0.1, init_std=0.1,
        pad_token_id=ROBERTA_PAD, bos_token_id=ROBERTA_BOS, eos_token_id=ROBERTA_EOS,
        decoder_start_token_id=ROBERTA_EOS, num_labels=2,
    )
    config._attn_implementation = "eager"
    model = LEDForSequenceClassificationV4(config).eval()
    led = model.led
    assert led.encoder.embed_tokens.weight.data_ptr() == led.shared.weight.data_ptr()
    assert led.decoder.embed_tokens.weight.data_ptr() == led.shared.weight.data_ptr()
    ids, mask = roberta_rows(gen, config.vocab_size)
    ref = {"input_ids": ids, "attention_mask": mask,
           "decoder_input_ids": shift_tokens_right(ids, config.pad_token_id, config.decoder_start_token_id)}
    for case, glob in global_masks().items():
        enc, enc_handles = capture(model, led.encoder.layernorm_embedding, led.encoder.layers)
        dec, dec_handles = capture(model, led.decoder.layernorm_embedding, led.decoder.layers)
        with torch.no_grad():
            logits = model(ids, mask, global_attention_mask=glob)
        for h in enc_handles + dec_handles:
            h.remove()
        padded = enc["hidden.0"].shape[1]
        assert padded % 4 == 0 and padded > LONG_SEQ, f"padded to {padded}"
        assert dec["hidden.0"].shape[1] == LONG_SEQ
        if glob is not None:
            ref[f"{case}.global_attention_mask"] = glob
        ref[f"{case}.logits"] = logits
        for k, v in trimmed(enc, LONG_SEQ).items():
            ref[f"{case}.encoder.{k}"] = v
        for k, v in dec.items():
            ref[f"{case}.decoder.{k}"] = v

    # The checkpoint as transformers 4 saved LEDForSequenceClassification, less the tied copies of
    # `led.shared` (transformers 5 saves tied weights once).
    d = os.path.join(out, "led-tiny")
    os.makedirs(d, exist_ok=True)
    config.save_pretrained(d)
    with open(os.path.join(d, "config.json")) as f:
        saved = json.load(f)
    saved["architectures"] = ["LEDForSequenceClassification"]
    write_json(os.path.join(d, "config.json"), saved)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
             if not k.endswith("embed_tokens.weight")}
    save_file(state, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    save_file(contiguous(ref), os.path.join(d, "reference.safetensors"))

    # The same encoder-decoder as a generation checkpoint (lm_head, final_logits_bias, no
    # classification head), as LED checkpoints on the Hub are.
    lm = transformers.LEDForConditionalGeneration(config)
    lm.led.load_state_dict(led.state_dict())
    lm.save_pretrained(os.path.join(out, "led-tiny-lm"))

    prune_masks(model, d, {
        "seed": [(m, n) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)],
        "default": [(m, n) for n, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and ".layers." in f".{n}"],
    })
# ---------------------------------------------------------------- DeBERTa (v1 and v2)

DEBERTA_SEQ = 20  # long enough for v1's clamped distances and v2's log buckets


def deberta_inputs(gen, vocab, with_types):
    # Row 0: 20 tokens; row 1: a sentence pair (token types when the model has them), right
    # padded from 15; row 2: short, right padded from 6.
    n = DEBERTA_SEQ
    ids = torch.randint(5, vocab, (3, n), generator=gen)
    ids[:, 0] = 1  # [CLS]-like
    mask = torch.ones(3, n, dtype=torch.long)
    types = torch.zeros(3, n, dtype=torch.long)
    ids[1, 7] = 2  # [SEP]-like
    ids[1, 14] = 2
    if with_types:
        types[1, 8:15] = 1
    mask[1, 15:] = 0
    ids[1, 15:] = PAD
    mask[2, 6:] = 0
    ids[2, 6:] = PAD
    return ids, mask, types


def deberta_reference(model, ids, mask, types, conv=None):
    """Hidden states by forward hooks (the conv's output replaces the first layer's, as in
    transformers' `hidden_states`), transformers' own `hidden_states`, the pooled output, logits."""
    base = model.deberta
    store, handles = capture(model, base.embeddings, base.encoder.layer)
    if conv is not None:
        def conv_hook(_module, _inputs, output):
            store["hidden.1"] = output
        handles.append(conv.register_forward_hook(conv_hook))
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
        pooled = model.pooler(out.hidden_states[-1])
    for h in handles:
        h.remove()
    ref = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "pooled": pooled, "logits": out.logits}
    ref.update(store)
    for i, h in enumerate(out.hidden_states):
        # The very tensors the hooks saw (transformers collects the same objects); copied, as
        # safetensors refuses tensors sharing memory.
        ref[f"transformers.hidden.{i}"] = h.clone()
    return ref


def deberta_masks(model, d):
    prune_masks(model, d, {
        # The study's scope: every nn.Linear (DeBERTa's in_proj, relative projections, pooler
        # and classifier included; not q_bias/v_bias, the relative embeddings or the conv).
        "seed": [(m, n) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)],
        "default": [(m, n) for n, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and ".encoder.layer." in f".{n}"],
    })


def make_deberta(out):
    gen = seeded(3)
    config = transformers.DebertaConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        initializer_range=0.3, max_position_embeddings=64, type_vocab_size=2, position_biased_input=True, embedding_size=24,
        relative_attention=True, max_relative_positions=6, pos_att_type=["c2p", "p2c"], hidden_act="gelu",
        pooler_hidden_act="gelu", layer_norm_eps=1e-7, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        num_labels=2, pad_token_id=PAD,
    )
    config._attn_implementation = "eager"
    model = transformers.DebertaForSequenceClassification(config).eval()
    randomize_deberta_extras(model, gen)
    ids, mask, types = deberta_inputs(gen, config.vocab_size, with_types=True)
    d = os.path.join(out, "deberta-tiny")
    save_checkpoint(model, d)
    save_file(contiguous(deberta_reference(model, ids, mask, types)), os.path.join(d, "reference.safetensors"))
    # The base model alone (keys without `deberta.`, no pooler or classifier).
    model.deberta.save_pretrained(os.path.join(out, "deberta-tiny-base"))
    deberta_masks(model, d)


def randomize_deberta_extras(model, gen):
    """Parameters transformers initialises to constants (q_bias/v_bias and LayerNorms at zero
    and one) get random values, so parity tests see them used the right way."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("q_bias", "v_bias")) or "LayerNorm" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))


def make_deberta_v2(out):
    gen = seeded(4)
    # DeBERTa-v3-like: no absolute positions or token types, log buckets, shared keys,
    # normalised relative embeddings, plus the convolution of the v2 xlarge models.
    config = transformers.DebertaV2Config(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        initializer_range=0.3, max_position_embeddings=64, type_vocab_size=0, position_biased_input=False, relative_attention=True,
        max_relative_positions=32, position_buckets=8, pos_att_type=["p2c", "c2p"], share_att_key=True,
        norm_rel_ebd="layer_norm", conv_kernel_size=3, conv_act="gelu", hidden_act="gelu",
        pooler_hidden_act="gelu", layer_norm_eps=1e-7, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        num_labels=2, pad_token_id=PAD,
    )
    config._attn_implementation = "eager"
    model = transformers.DebertaV2ForSequenceClassification(config).eval()
    randomize_deberta_extras(model, gen)
    ids, mask, types = deberta_inputs(gen, config.vocab_size, with_types=False)
    d = os.path.join(out, "deberta-v2-tiny")
    save_checkpoint(model, d)
    ref = deberta_reference(model, ids, mask, types, conv=model.deberta.encoder.conv)
    save_file(contiguous(ref), os.path.join(d, "reference.safetensors"))
    deberta_masks(model, d)

    # The other v2 paths: own relative projections (pos_key_proj, pos_query_proj), plain
    # clamped distances, token types and absolute positions, no convolution.
    gen = seeded(5)
    config = transformers.DebertaV2Config(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        initializer_range=0.3, max_position_embeddings=64, type_vocab_size=2, position_biased_input=True, relative_attention=True,
        max_relative_positions=6, pos_att_type="c2p|p2c", share_att_key=False, hidden_act="gelu_new",
        pooler_hidden_act="tanh", layer_norm_eps=1e-7, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        num_labels=3, pad_token_id=PAD,
    )
    config._attn_implementation = "eager"
    model = transformers.DebertaV2ForSequenceClassification(config).eval()
    randomize_deberta_extras(model, gen)
    ids, mask, types = deberta_inputs(gen, config.vocab_size, with_types=True)
    d = os.path.join(out, "deberta-v2-tiny-plain")
    save_checkpoint(model, d)
    save_file(contiguous(deberta_reference(model, ids, mask, types)), os.path.join(d, "reference.safetensors"))

    make_deberta_v2_tokenizer(os.path.join(out, "deberta-v2-tiny"))


TOKENIZER_SENTENCES = [
    ("the cat sat on the mat", None),
    ("a dog  ran\tto the  park ", "the cat sat"),
    ("The Zebra ate 3 apples!", None),
    ("on a mat", "a quiet dog sat on the cat"),
]


def make_deberta_v2_tokenizer(d):
    """A DeBERTa-v2 tokenizer (SentencePiece Unigram, as DeBERTa-v3's) over a tiny vocabulary,
    saved as `tokenizer.json`, with the ids and token types transformers gives a few single
    sentences and pairs."""
    from transformers import DebertaV2Tokenizer

    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "park", "quiet", "ate", "apples"]
    vocab = [("[PAD]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[UNK]", 0.0), ("[MASK]", 0.0)]
    vocab += [("\u2581" + w, -2.0 - 0.1 * i) for i, w in enumerate(words)]
    vocab += [("\u2581", -4.0)] + [(c, -5.0 - 0.01 * i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")]
    tok = DebertaV2Tokenizer(vocab=vocab)
    tok.save_pretrained(d)
    cases = []
    for a, b in TOKENIZER_SENTENCES:
        enc = tok(a, b) if b is not None else tok(a)
        cases.append({"text_a": a, "text_b": b, "input_ids": enc["input_ids"],
                      "token_type_ids": enc["token_type_ids"]})
    write_json(os.path.join(d, "tokenizer-reference.json"), {"cases": cases})


# ---------------------------------------------------------------- pruning

def prune_masks(model, out_dir, scopes):
    """torch's global L1 unstructured masks at each amount, per scope."""
    import copy
    from torch.nn.utils import prune

    for scope, modules in scopes.items():
        for amount in AMOUNTS:
            clone = copy.deepcopy(model)
            by_name = dict(clone.named_modules())
            params = [(by_name[name], "weight") for _, name in modules]
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
            masks = {f"{name}.weight": by_name[name].weight_mask.to(torch.uint8) for _, name in modules}
            save_file(contiguous(masks), os.path.join(out_dir, f"masks-{scope}-{int(amount * 100)}.safetensors"))


# ---------------------------------------------------------------- real MiniLM

MINILM_SENTENCES = [
    "it 's a charming and often affecting journey . ",
    "The sailors rode the breeze clear of the rocks.",
    "unflinchingly bleak and desperate ",
]


def make_minilm(out, src):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(src, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    encs = tok.encode_batch(MINILM_SENTENCES)
    length = max(len(e.ids) for e in encs)
    ids = torch.zeros(len(encs), length, dtype=torch.long)
    mask = torch.zeros(len(encs), length, dtype=torch.long)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = torch.tensor(e.ids)
        mask[i, : len(e.ids)] = 1
    model = transformers.BertModel.from_pretrained(src, variant="fp16", dtype=torch.float32, attn_implementation="eager").eval()
    store, handles = capture(model, model.embeddings, model.encoder.layer)
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
    for h in handles:
        h.remove()
    ref = {"input_ids": ids, "attention_mask": mask}
    ref.update(store)
    save_file(contiguous(ref), os.path.join(out, "minilm-reference.safetensors"))
    write_json(os.path.join(out, "minilm-reference.json"), {"sentences": MINILM_SENTENCES})


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--minilm", help="directory of all-MiniLM-L6-v2 (config.json, tokenizer.json, model.fp16.safetensors)")
    parser.add_argument("--only", nargs="*", help="fixture groups to make (bert gpt2 deberta deberta-v2 longformer roberta led minilm)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    groups = {
        "bert": lambda: make_bert(args.out),
        "gpt2": lambda: make_gpt2(args.out),
        "longformer": lambda: make_longformer(args.out),
        "roberta": lambda: make_roberta(args.out),
        "led": lambda: make_led(args.out),
        "deberta": lambda: make_deberta(args.out),
        "deberta-v2": lambda: make_deberta_v2(args.out),
    }
    if args.minilm:
        groups["minilm"] = lambda: make_minilm(args.out, args.minilm)
    failed = []
    for name, make in groups.items():
        if args.only and name not in args.only:
            continue
        try:
            make()
            print(f"made {name}", flush=True)
        except Exception:  # keep going: one broken group must not cost the others
            traceback.print_exc()
            failed.append(name)
    write_json(os.path.join(args.out, "versions.json"),
               {"torch": torch.__version__, "transformers": transformers.__version__, "python": sys.version.split()[0]})
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
