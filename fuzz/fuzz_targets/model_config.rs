//! `config.json` parsing and validation (`ModelConfig::from_json`), then what `prunelab model
//! info` asks of a parsed config.
//!
//! Input starting with `{` is the file as it is. Any other input builds a config from known keys
//! with numbers, strings and lists drawn from it: mutating text rarely turns `768` into
//! `4611686018427387904`, and that is where the overflows are.
#![no_main]

mod common;

use std::path::Path;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use prunelab_models::{ModelConfig, SUPPORTED_MODEL_TYPES};
use serde_json::{Map, Value, json};

const KEYS: [&str; 31] = [
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "pad_token_id",
    "n_positions",
    "n_embd",
    "n_layer",
    "n_head",
    "n_inner",
    "eos_token_id",
    "d_model",
    "encoder_layers",
    "decoder_layers",
    "encoder_attention_heads",
    "decoder_attention_heads",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "max_encoder_position_embeddings",
    "max_decoder_position_embeddings",
    "decoder_start_token_id",
    "attention_window",
    "prunelab_heads",
    "id2label",
    "num_labels",
    "hidden_act",
    "activation_function",
    "position_embedding_type",
];

fn number(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=3)? {
        0 => json!(u.int_in_range(0u64..=8)?),
        1 => json!(u.int_in_range(0u64..=4096)?),
        2 => json!(1u64 << u.int_in_range(0..=63)?),
        _ => json!(u.arbitrary::<u64>()?),
    })
}

fn value(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=5)? {
        0..=2 => number(u)?,
        3 => Value::Array((0..u.int_in_range(0..=4)?).map(|_| number(u)).collect::<Result<_>>()?),
        4 => json!(*u.choose(&["gelu", "gelu_new", "relu", "absolute", "relative_key", "mish"])?),
        _ => {
            let n = u.int_in_range(0..=4)?;
            Value::Object((0..n).map(|i| (i.to_string(), json!(format!("L{i}")))).collect())
        }
    })
}

fn structured(data: &[u8]) -> Result<String> {
    let mut u = Unstructured::new(data);
    let mut config = Map::new();
    config.insert("model_type".into(), json!(*u.choose(&SUPPORTED_MODEL_TYPES)?));
    for _ in 0..u.int_in_range(0..=8)? {
        config.insert((*u.choose(&KEYS)?).into(), value(&mut u)?);
    }
    Ok(Value::Object(config).to_string())
}

fuzz_target!(|data: &[u8]| {
    let text = if data.first() == Some(&b'{') {
        let Ok(text) = std::str::from_utf8(data) else { return };
        text.to_owned()
    } else {
        let Ok(text) = structured(data) else { return };
        text
    };
    match ModelConfig::from_json(&text, Path::new("config.json")) {
        Ok(config) => {
            let _ = config.summary();
            let heads = config.heads_per_layer();
            assert!(heads.iter().all(|&h| h > 0));
            assert!(config.head_dim() > 0);
            let _ = (config.declared_num_labels(), config.model_type(), config.inner_size_key());
        }
        Err(e) => common::assert_names(&e.to_string(), "config.json"),
    }
});
