//! GLUE TSV parsing (`prunelab_glue::tsv::parse`): the first byte picks the task and split, the
//! rest is the file.
#![no_main]

mod common;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use prunelab_glue::{GlueTask, Split, tsv};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else { return };
    let task = GlueTask::ALL[usize::from(pick & 0x0f) % GlueTask::ALL.len()];
    let split = Split::ALL[usize::from(pick >> 4) % Split::ALL.len()];
    let spec = task.spec();
    match tsv::parse(text, Path::new("fuzz.tsv"), spec, split) {
        Ok(examples) => {
            for e in &examples {
                assert_eq!(e.label.is_some(), split != Split::Test);
                assert!(e.label.is_none_or(|l| (l as usize) < spec.num_labels()));
                assert_eq!(e.text_b.is_some(), spec.layout(split).text_b.is_some());
            }
        }
        Err(e) => common::assert_names(&e.to_string(), "fuzz.tsv"),
    }
});
