//! A `cargo xtask reproduce --grid FILE` grid file, parsed by xtask's own `grid.rs` (included
//! here, since xtask is a binary), then expanded into cells when the grid is small.
#![no_main]

mod common;

#[allow(dead_code, unreachable_pub)]
#[path = "../../xtask/src/grid.rs"]
mod grid;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::write("grid.toml", data);
    match grid::Grid::from_file(&path) {
        Ok(grid) => {
            let per_model_task_seed = 1 + grid.arms.len() * grid.amounts.len();
            let cells = [grid.models.len(), grid.tasks.len(), grid.seeds.len(), per_model_task_seed]
                .into_iter()
                .try_fold(1usize, usize::checked_mul);
            if cells.is_none_or(|n| n > 10_000) {
                return;
            }
            for cell in grid.cells() {
                assert!((0.0..1.0).contains(&cell.amount), "cell {} has amount {}", cell.label(), cell.amount);
                let _ = (cell.dir(std::path::Path::new("out")), cell.finetune_args(&grid.train));
            }
        }
        Err(e) => common::assert_names(&format!("{e:#}"), "grid.toml"),
    }
});
