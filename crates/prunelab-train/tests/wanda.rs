//! Wanda against references computed by PyTorch + transformers (`scripts/make_wanda_fixtures.py`)
//! on the tiny BERT and GPT-2 fixtures: the input norms every projection observes over the same
//! calibration sequences, and the masks at 50 % and 90 % (bit for bit, in the checkpoint layout).

mod common;

use std::collections::HashMap;

use burn::module::AutodiffModule;
use common::{batcher, fixtures, pretrained};
use prunelab_glue::{Encoded, GlueBatcher};
use prunelab_prune::{Scope, ScopeKind, compute_wanda_masks};
use prunelab_stats::weights;
use prunelab_train::calibrate::input_norms;
use safetensors::SafeTensors;

/// `(name, values as f32 or u8 widened)` of every tensor of a reference file.
fn reference(name: &str) -> HashMap<String, (Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(fixtures().join(name).join("wanda-reference.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(key, view)| {
            let data = view.data();
            let values: Vec<f64> = match view.dtype() {
                safetensors::Dtype::F32 => {
                    data.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap()))).collect()
                }
                safetensors::Dtype::I64 => {
                    data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64).collect()
                }
                safetensors::Dtype::U8 => data.iter().map(|b| f64::from(*b)).collect(),
                other => panic!("{key}: unexpected {other:?}"),
            };
            (key, (view.shape().to_vec(), values))
        })
        .collect()
}

#[test]
fn wanda_matches_pytorch_on_bert_and_gpt2() {
    for (name, token_types, pad_id) in [("bert-tiny", true, 0), ("gpt2-tiny", false, 98)] {
        let refs = reference(name);
        let model = pretrained(name).valid();
        let examples: Vec<Encoded> = (0..)
            .map_while(|i| refs.get(&format!("ids.{i}")))
            .enumerate()
            .map(|(i, (_, ids))| {
                let ids: Vec<u32> = ids.iter().map(|v| *v as u32).collect();
                Encoded { idx: i as u32, token_type_ids: vec![0; ids.len()], input_ids: ids, label: Some(0) }
            })
            .collect();
        assert_eq!(examples.len(), 4, "{name}: the calibration sequences");
        let batcher = GlueBatcher { pad_id, token_types, ..batcher() };
        let ours = input_norms(&model, &examples, &batcher, &Default::default());
        let tensors = weights(&model, model.naming().as_ref());
        let scope = Scope::new(ScopeKind::Default);
        let in_scope = scope.select(&tensors);
        // The norms, by Burn path: ours against PyTorch's.
        let mut theirs: HashMap<String, Vec<f32>> = HashMap::new();
        for t in &in_scope {
            let (_, torch) = &refs[&format!("norms.{}", t.key)];
            let mine = ours.get(&t.path).unwrap_or_else(|| panic!("{name}: {} was not observed", t.key));
            assert_eq!(mine.len(), torch.len(), "{}", t.key);
            for (a, b) in mine.iter().zip(torch) {
                assert!((f64::from(*a) - b).abs() <= 1e-4 * b.abs().max(1e-3), "{}: norm {a} vs {b}", t.key);
            }
            theirs.insert(t.path.clone(), torch.iter().map(|v| *v as f32).collect());
        }
        assert_eq!(in_scope.len(), if name == "bert-tiny" { 12 } else { 8 }, "{name}: every projection of the scope");
        for percent in [50, 90] {
            let amount = f64::from(percent) / 100.0;
            // With PyTorch's norms, the masks are PyTorch's bit for bit; with ours, nearly so.
            let exact = compute_wanda_masks(&tensors, &scope, amount, &theirs).unwrap();
            let own = compute_wanda_masks(&tensors, &scope, amount, &ours).unwrap();
            let (mut same, mut all) = (0usize, 0usize);
            for (mask, mine) in exact.masks.iter().zip(&own.masks) {
                let (_, torch) = &refs[&format!("masks-{percent}.{}", mask.key)];
                let torch: Vec<u8> = torch.iter().map(|v| *v as u8).collect();
                assert_eq!(mask.to_hf_bytes(), torch, "{name} {percent}%: {}", mask.key);
                same += mine.to_hf_bytes().iter().zip(&torch).filter(|(a, b)| a == b).count();
                all += torch.len();
            }
            assert!(same as f64 >= 0.999 * all as f64, "{name} {percent}%: {same} of {all} agree with our norms");
        }
    }
}
