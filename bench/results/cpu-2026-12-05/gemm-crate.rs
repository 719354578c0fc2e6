use std::time::Instant;
fn main() {
    // [m, k] x [k, n]: MiniLM's projections at batch 32 x 128 tokens (forward), and the two backward shapes.
    let shapes = [(4096usize, 384usize, 1536usize), (4096, 1536, 384), (4096, 384, 384), (384, 4096, 1536)];
    for &(m, k, n) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729 % 1000) as f32 / 1000.0) - 0.5).collect();
        let mut c1 = vec![0f32; m * n];
        let mut c2 = vec![0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        let reps = 5;
        let t = Instant::now();
        for _ in 0..reps {
            unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0, c1.as_mut_ptr(), n as isize, 1) };
        }
        let mm = flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
        let t = Instant::now();
        for _ in 0..reps {
            unsafe {
                gemm::gemm(m, n, k, c2.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), 1, k as isize, b.as_ptr(), 1, n as isize, 0.0f32, 1.0f32, false, false, false, gemm::Parallelism::None)
            };
        }
        let gm = flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
        let maxdiff = c1.iter().zip(&c2).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        println!("{m}x{k}x{n}: matrixmultiply {mm:.1} GFLOP/s, gemm {gm:.1} GFLOP/s ({:.2}x), max diff {maxdiff:e}", gm / mm);
    }
}
