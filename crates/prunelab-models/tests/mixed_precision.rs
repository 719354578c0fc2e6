//! Mixed precision's plumbing (`layers::set_matmul_dtype`), on the CPU backend. ndarray has no
//! bf16, so the products run in f64 here: the same casts in and out, the same autodiff path back
//! to f32 weights. The outputs must stay within 1e-5 of plain f32, but not be bit-equal (which
//! would mean the setting did nothing); every f32 parameter must get an f32 gradient close to
//! plain f32's. One test in its own binary: the setting is process-wide.

mod common;

use std::collections::BTreeMap;

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use common::{B, fixtures, read_tensors};
use prunelab_hub::Hub;
use prunelab_models::{ModelInput, ModelSource, layers, load_classifier};

type AB = burn::backend::Autodiff<B>;

fn int2(data: &burn::tensor::TensorData) -> Tensor<AB, 2, Int> {
    Tensor::from_data(data.clone().convert::<i64>(), &Default::default())
}

/// Every parameter's gradient with its dtype, by parameter path.
type Grads = BTreeMap<String, (DType, Vec<f32>)>;

/// Logits and every parameter's gradient (of the sum of the logits).
fn run(dir: &str, ids: &str, mask: &str) -> (Vec<f32>, Grads) {
    // Autodiff means training mode: the same seed gives both runs the same dropout masks.
    <AB as burn::tensor::backend::Backend>::seed(&Default::default(), 7);
    let files = ModelSource::Dir(fixtures().join(dir)).resolve(&Hub::new("/nonexistent", true)).unwrap();
    let model = load_classifier::<AB>(&files, 2, &Default::default()).unwrap().model;
    let r = read_tensors(&fixtures().join(dir).join("reference.safetensors"));
    let out = model.forward_detailed(ModelInput {
        input_ids: int2(&r[ids]),
        attention_mask: int2(&r[mask]),
        token_type_ids: None,
    });
    let logits = out.logits.clone().into_data().convert::<f32>().to_vec::<f32>().unwrap();
    let grads = out.logits.sum().backward();

    struct Collect<'a>(
        &'a <AB as burn::tensor::backend::AutodiffBackend>::Gradients,
        Vec<String>,
        BTreeMap<String, (DType, Vec<f32>)>,
    );
    impl burn::module::ModuleVisitor<AB> for Collect<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.1.push(name.to_owned());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.1.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<AB, D>>) {
            let path = format!("{}#{}", self.1.join("."), self.2.len());
            if let Some(g) = param.val().grad(self.0) {
                let dtype = g.dtype();
                self.2.insert(path, (dtype, g.into_data().convert::<f32>().to_vec::<f32>().unwrap()));
            }
        }
    }
    let mut c = Collect(&grads, Vec::new(), BTreeMap::new());
    model.visit(&mut c);
    (logits, c.2)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn products_in_another_dtype_keep_outputs_and_f32_gradients() {
    for (dir, ids, mask) in
        [("bert-tiny", "input_ids", "attention_mask"), ("gpt2-tiny", "right.input_ids", "right.attention_mask")]
    {
        layers::set_matmul_dtype(None);
        let (logits, grads) = run(dir, ids, mask);
        layers::set_matmul_dtype(Some(FloatDType::F64));
        let (mixed_logits, mixed_grads) = run(dir, ids, mask);
        layers::set_matmul_dtype(None);

        let d = max_diff(&logits, &mixed_logits);
        assert!(d <= 1e-5, "{dir}: logits differ by {d}");
        assert!(d > 0.0, "{dir}: logits are bit-equal: the products did not run in f64");
        assert!(grads.len() > 10, "{dir}: {} gradients", grads.len());
        assert_eq!(grads.keys().collect::<Vec<_>>(), mixed_grads.keys().collect::<Vec<_>>(), "{dir}");
        for (path, (dtype, g)) in &grads {
            let (mixed_dtype, mg) = &mixed_grads[path];
            assert_eq!((*dtype, *mixed_dtype), (DType::F32, DType::F32), "{dir} {path}: master gradients stay f32");
            let scale = g.iter().fold(1e-3f32, |m, x| m.max(x.abs()));
            let d = max_diff(g, mg);
            assert!(d <= 1e-4 * scale, "{dir} {path}: gradients differ by {d} (scale {scale})");
        }
    }
}
