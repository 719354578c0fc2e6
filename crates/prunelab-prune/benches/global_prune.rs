//! Benchmark: global L1 pruning of a GPT-2-small-sized model (124M parameters, random weights)
//! on the CPU backend. Run with `cargo bench -p prunelab-prune --bench global_prune`.
//!
//! Times, over 3 runs each (after one warm-up): reading the weights out of the Burn model,
//! computing the masks of the default scope at 90 %, and applying them. Prints the medians.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use burn::backend::NdArray;
use burn::module::Module;
use prunelab_models::gpt2::{Gpt2Config, Gpt2Naming};
use prunelab_prune::{DeviceMasks, PruneSpec, Scheme, Scope, ScopeKind, compute_masks};
use prunelab_stats::weights;

type B = NdArray;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let device = Default::default();
    let naming = Gpt2Naming { initializer_range: 0.02 };
    let model = Gpt2Config::default().init_classifier::<B>(2, &device);
    // Materialise the lazy random initialisation outside the timings.
    let params = model.num_params();
    let _ = weights(&model, &naming);
    let spec = PruneSpec { scheme: Scheme::GlobalL1, amount: 0.9, seed: 0 };
    let scope = Scope::new(ScopeKind::Default);
    let (mut read, mut compute, mut apply) = (Vec::new(), Vec::new(), Vec::new());
    let mut scope_size = 0;
    for run in 0..4 {
        let t0 = Instant::now();
        let tensors = weights(&model, &naming);
        let t1 = Instant::now();
        let masks = compute_masks(&tensors, &scope, &spec).expect("masks");
        let t2 = Instant::now();
        let pruned = DeviceMasks::<B>::new(&masks, &device).apply(model.clone());
        let _ = weights(&pruned, &naming).len(); // force the multiplications
        let t3 = Instant::now();
        scope_size = masks.len_weights();
        if run > 0 {
            read.push((t1 - t0).as_secs_f64());
            compute.push((t2 - t1).as_secs_f64());
            apply.push((t3 - t2).as_secs_f64());
        }
    }
    let (r, c, a) = (median(read), median(compute), median(apply));
    println!("global L1 at 90% on GPT-2 small: {params} parameters, {scope_size} in the default scope");
    println!("read weights  {r:.3} s");
    println!("compute masks {c:.3} s");
    println!("apply masks   {a:.3} s");
    println!("total         {:.3} s (target <= 5 s on 2 cores)", r + c + a);
}
