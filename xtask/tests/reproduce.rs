//! `cargo xtask reproduce` against a stand-in `prunelab` (a shell script that answers `model
//! check`, writes result files and holds the cell lock as the real one does), so the driver's
//! promises are tested in seconds: every cell runs once; a second run redoes nothing; a run
//! killed mid-grid resumes and ends with the same table; two drivers never share an output
//! directory; unusable models and a missing GPU stop the run before any work.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const FAKE: &str = r#"#!/bin/sh
while :; do
  case "$1" in
    --quiet|-q) shift ;;
    --kernel-cache) kc=$2; shift 2 ;;
    *) break ;;
  esac
done
cmd=$1; shift
case "$cmd" in
  model)
    case "$2" in
      *unsupported*) echo '{"available":true,"supported":false,"reason":"unsupported model_type t5"}' ;;
      *missing*) echo '{"available":false,"supported":null,"reason":"offline and not in the cache"}' ;;
      *huge*) echo '{"available":true,"supported":true,"model_type":"bert","approx_parameters":1000000000000000}' ;;
      *) echo '{"available":true,"supported":true,"model_type":"bert"}' ;;
    esac ;;
  inspect)
    out=""; while [ $# -gt 0 ]; do [ "$1" = "--out" ] && out=$2; shift; done
    mkdir -p "$out" && echo '{"model":"m"}' > "$out/stats.json"
    echo inspect >> "$FAKE_LOG" ;;
  finetune)
    out=""; amount=0; seed=0; task=""
    while [ $# -gt 0 ]; do
      case "$1" in --out) out=$2;; --amount) amount=$2;; --seed) seed=$2;; --task) task=$2;; --no-checkpoint) nock=1;;
        --teacher) teacher=$2;; --no-export) noexport=1;; esac; shift
    done
    # A teacher is a finished run's exported model, as the real one needs it.
    if [ -n "$teacher" ] && [ ! -f "$teacher/config.json" ]; then echo "error: no teacher at $teacher" >&2; exit 4; fi
    mkdir -p "$out"
    exec 9>"$out/.lock"
    flock -n 9 || { echo "locked" >&2; exit 3; }
    echo "finetune $out${nock:+ no-checkpoint}" >> "$FAKE_LOG"
    if [ -n "$FAKE_TRACE" ]; then echo "start $kc gpu=$CUDA_VISIBLE_DEVICES" >> "$FAKE_TRACE"; fi
    if [ -n "$FAKE_SLEEP" ]; then sleep "$FAKE_SLEEP"; fi
    if [ -n "$FAKE_TRACE" ]; then echo "end $kc" >> "$FAKE_TRACE"; fi
    if [ -n "$FAKE_FAIL_AMOUNT" ] && [ "$amount" = "$FAKE_FAIL_AMOUNT" ]; then
      printf '{"status":"failed","reason":"the loss is NaN at epoch 1, step 50"}\n' > "$out/result.json"
      echo "error: run failed" >&2
      exit 1
    fi
    if [ -z "$noexport" ]; then mkdir -p "$out/model" && echo '{}' > "$out/model/config.json"; fi
    printf '{"status":"finished","task":"%s","amount":%s,"seed":%s}\n' "$task" "$amount" "$seed" > "$out/result.json.tmp"
    mv "$out/result.json.tmp" "$out/result.json" ;;
  report)
    dir=$1
    mkdir -p "$dir/report"
    (cd "$dir" && find runs -name result.json | sort | while read -r f; do echo "$f $(cat "$f")"; done) > "$dir/report/table.txt"
    echo report >> "$FAKE_LOG" ;;
esac
"#;

struct Setup {
    root: PathBuf,
    bin: PathBuf,
    data: PathBuf,
    grid: PathBuf,
}

fn setup(name: &str, grid: &str) -> Setup {
    let root = std::env::temp_dir().join(format!("xtask-reproduce-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let bin = root.join("prunelab");
    std::fs::write(&bin, FAKE).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = root.join("glue");
    for task in ["SST-2", "CoLA"] {
        std::fs::create_dir_all(data.join(task)).unwrap();
        std::fs::write(data.join(task).join("train.tsv"), "").unwrap();
    }
    let grid_path = root.join("grid.toml");
    std::fs::write(&grid_path, grid).unwrap();
    Setup { root, bin, data, grid: grid_path }
}

const GRID: &str = r#"
name = "test"
models = ["org/model", "org/unsupported-model"]
tasks = ["sst2", "cola"]
amounts = [0.5, 0.9]
[[arms]]
scheme = "global-l1"
[train]
epochs = 1
"#;

impl Setup {
    fn command(&self, out: &str) -> Command {
        self.command_on(out, "ndarray")
    }
    fn command_on(&self, out: &str, backend: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(["reproduce", "--backend", backend, "--grid"])
            .arg(&self.grid)
            .arg("--bin")
            .arg(&self.bin)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--out")
            .arg(self.root.join(out))
            .env("FAKE_LOG", self.root.join(format!("{out}.log")));
        cmd
    }
    fn run(&self, out: &str) -> Output {
        self.command(out).output().unwrap()
    }
    fn log(&self, out: &str) -> String {
        std::fs::read_to_string(self.root.join(format!("{out}.log"))).unwrap_or_default()
    }
    fn table(&self, out: &str) -> String {
        std::fs::read_to_string(self.root.join(out).join("report/table.txt")).unwrap()
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn every_cell_runs_once_and_a_second_run_redoes_nothing() {
    let s = setup("once", GRID);
    let first = s.run("out");
    assert!(first.status.success(), "{}", text(&first));
    // org/model × 2 tasks × (dense + 2 amounts); the unsupported model is skipped with its reason.
    assert_eq!(s.log("out").matches("finetune").count(), 6, "{}", s.log("out"));
    assert_eq!(s.table("out").lines().count(), 6);
    let skipped = std::fs::read_to_string(s.root.join("out/skipped.json")).unwrap();
    assert!(skipped.contains("org/unsupported-model") && skipped.contains("unsupported model_type t5"), "{skipped}");
    assert!(text(&first).contains("skipping org/unsupported-model"), "{}", text(&first));

    let second = s.run("out");
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(s.log("out").matches("finetune").count(), 6, "nothing is run twice");
    assert!(text(&second).contains("6 finished before, 0 to run"), "{}", text(&second));
    assert_eq!(s.log("out").matches("report").count(), 2);
    let _ = std::fs::remove_dir_all(&s.root);
}

#[test]
fn a_killed_run_resumes_and_ends_with_the_same_table() {
    let s = setup("kill", GRID);
    let reference = s.run("reference");
    assert!(reference.status.success(), "{}", text(&reference));

    let mut child = s.command("killed").env("FAKE_SLEEP", "1").spawn().unwrap();
    let started = Instant::now();
    while s.log("killed").matches("finetune").count() < 3 {
        assert!(started.elapsed() < Duration::from_secs(60), "the grid did not get going");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL: the running cell's process is orphaned and goes on
    let _ = child.wait();
    let resumed = s.run("killed");
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(s.table("killed"), s.table("reference"));
    // Each cell ran exactly once, the orphaned one included (the resumed driver waited for it).
    assert_eq!(s.log("killed").matches("finetune").count(), 6, "{}", s.log("killed"));
    let _ = std::fs::remove_dir_all(&s.root);
}

#[test]
fn two_drivers_never_share_an_output_directory() {
    let s = setup("lock", GRID);
    let out = s.root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let held = std::fs::File::create(out.join(".lock")).unwrap();
    held.lock().unwrap();
    let second = s.run("out");
    assert!(!second.status.success());
    assert!(text(&second).contains("another `cargo xtask reproduce` is running"), "{}", text(&second));
    assert_eq!(s.log("out"), "", "nothing ran");
    drop(held);
    let _ = std::fs::remove_dir_all(&s.root);
}

#[test]
fn unusable_models_and_a_missing_gpu_stop_before_any_work() {
    let s = setup("preflight", &GRID.replace("org/unsupported-model", "org/missing-model"));
    let out = s.run("out");
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("org/missing-model") && msg.contains("--model-dir ID=DIR"), "{msg}");
    assert!(!s.root.join("out/runs").exists(), "no cell ran");

    let s = setup("gpu", &format!("needs_gpu = true\n{GRID}"));
    let out = s.run("out");
    assert!(!out.status.success());
    assert!(text(&out).contains("--allow-cpu"), "{}", text(&out));
    assert_eq!(s.log("out"), "");
    let _ = std::fs::remove_dir_all(&s.root);
}

#[test]
fn a_failed_cell_is_kept_and_the_grid_goes_on() {
    let s = setup("failed", GRID);
    let out = s.command("out").env("FAKE_FAIL_AMOUNT", "0.9").output().unwrap();
    assert!(!out.status.success(), "the driver reports failures in its exit code");
    assert!(text(&out).contains("2 of 6 cells failed"), "{}", text(&out));
    let table = s.table("out");
    assert_eq!(table.matches("\"failed\"").count(), 2, "{table}");
    assert_eq!(table.matches("\"finished\"").count(), 4, "{table}");
    // Failed cells are kept (not retried) unless asked.
    let again = s.run("out");
    assert!(text(&again).contains("6 finished before, 0 to run"), "{}", text(&again));
    let retried = s.command("out").arg("--retry-failed").output().unwrap();
    assert!(retried.status.success(), "{}", text(&retried));
    assert_eq!(s.table("out").matches("\"finished\"").count(), 6);
    let _ = std::fs::remove_dir_all(&s.root);
}

/// A row of docs/BAD_INPUT.md: a grid file with a key the grid does not have.
#[test]
fn a_grid_file_with_an_unknown_key_is_refused() {
    let s = setup("unknown-key", &GRID.replace("epochs = 1", "epochs = 1\nlearning_rate = 1e-4"));
    let out = s.run("out");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains("grid.toml: not a valid grid") && msg.contains("unknown field `learning_rate`"), "{msg}");
    assert!(!msg.contains("panicked"), "{msg}");
    assert_eq!(s.log("out"), "", "nothing ran");
    let _ = std::fs::remove_dir_all(&s.root);
}

/// A row of docs/BAD_INPUT.md: an N:M arm that keeps nothing (found by fuzzing the grid parser).
#[test]
fn a_grid_arm_with_an_impossible_nm_is_refused() {
    let s = setup("bad-nm", &GRID.replace("scheme = \"global-l1\"", "scheme = \"nm\"\nnm = [0, 4]"));
    let out = s.run("out");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains("grid.toml") && msg.contains("arms[0].nm: [0, 4] is not N:M with 0 < N < M"), "{msg}");
    assert_eq!(s.log("out"), "", "nothing ran");
    let _ = std::fs::remove_dir_all(&s.root);
}

#[test]
fn jobs_run_cells_side_by_side_with_a_kernel_cache_each_and_the_same_table() {
    // CoLA first in the grid: the scheduler still starts SST-2's longer cells first.
    let s = setup("jobs", &GRID.replace(r#"tasks = ["sst2", "cola"]"#, r#"tasks = ["cola", "sst2"]"#));
    let serial = s.run("serial");
    assert!(serial.status.success(), "{}", text(&serial));
    let trace = s.root.join("trace");
    let out = s.command("par").args(["--jobs", "3"]).env("FAKE_SLEEP", "1").env("FAKE_TRACE", &trace).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(s.table("par"), s.table("serial"), "the same cells, the same results");
    assert_eq!(s.log("par").matches("finetune").count(), 6, "every cell once");
    // Three start before any ends, each with a kernel cache of its own.
    let events: Vec<String> = std::fs::read_to_string(&trace).unwrap().lines().map(str::to_owned).collect();
    let first: Vec<&String> = events.iter().take_while(|e| e.starts_with("start")).collect();
    assert_eq!(first.len(), 3, "{events:?}");
    let caches: std::collections::BTreeSet<&String> = first.iter().copied().collect();
    assert_eq!(caches.len(), 3, "a kernel cache per concurrent run: {events:?}");
    // Each run's output is in its log file; the longest cells (SST-2) went first.
    let logs = s.root.join("par").join("logs");
    assert_eq!(std::fs::read_dir(&logs).unwrap().count(), 6);
    let said = text(&out);
    let started: Vec<&str> = said.lines().filter(|l| l.contains("started")).collect();
    assert!(started[..3].iter().all(|l| l.contains(" sst2 ")), "{started:?}");
    let again = s.command("par").args(["--jobs", "3"]).output().unwrap();
    assert!(text(&again).contains("6 finished before, 0 to run"), "{}", text(&again));
    let _ = std::fs::remove_dir_all(&s.root);
}

#[test]
fn gpus_spread_the_jobs_over_the_visible_gpus_round_robin() {
    let s = setup("gpus", GRID);
    // A stand-in `nvidia-smi` that lists three GPUs, first on the PATH.
    let tools = s.root.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    let smi = tools.join("nvidia-smi");
    std::fs::write(&smi, "#!/bin/sh\nfor i in 0 1 2; do echo \"GPU $i: NVIDIA H200 (UUID: GPU-$i)\"; done\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&smi, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap());
    let trace = s.root.join("trace");
    let out = s
        .command_on("par", "cuda")
        .args(["--jobs", "4", "--gpus", "2"])
        .env("PATH", &path)
        .env_remove("CUDA_VISIBLE_DEVICES")
        .env("FAKE_SLEEP", "1")
        .env("FAKE_TRACE", &trace)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let events = std::fs::read_to_string(&trace).unwrap();
    let first: Vec<&str> = events.lines().take_while(|e| e.starts_with("start")).collect();
    assert_eq!(first.len(), 4, "{events}");
    for gpu in ["gpu=0", "gpu=1"] {
        assert_eq!(first.iter().filter(|e| e.ends_with(gpu)).count(), 2, "two slots per GPU: {events}");
    }
    assert!(
        events.lines().filter(|e| e.starts_with("start")).all(|e| e.ends_with("gpu=0") || e.ends_with("gpu=1")),
        "only the first two GPUs: {events}"
    );
    assert!(text(&out).contains("on GPU 1"), "{}", text(&out));

    // The caller's CUDA_VISIBLE_DEVICES narrows the choice: its entries are used, in order.
    let trace2 = s.root.join("trace2");
    let out = s
        .command_on("narrowed", "cuda")
        .args(["--jobs", "2", "--gpus", "2"])
        .env("CUDA_VISIBLE_DEVICES", "5,7")
        .env("FAKE_TRACE", &trace2)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let events = std::fs::read_to_string(&trace2).unwrap();
    assert!(events.contains("gpu=5") && events.contains("gpu=7"), "{events}");

    // Refused before any work: more GPUs than visible, fewer jobs than GPUs, a backend other than cuda.
    let cases: [(&str, &[&str], &str); 3] = [
        ("cuda", &["--jobs", "4", "--gpus", "4"], "--gpus 4: only 3 GPU(s) visible"),
        ("cuda", &["--jobs", "1", "--gpus", "2"], "give at least one job per GPU"),
        ("ndarray", &["--jobs", "2", "--gpus", "2"], "--gpus 2 needs the cuda backend"),
    ];
    for (backend, flags, message) in cases {
        let out = s
            .command_on("refused", backend)
            .args(flags)
            .env("PATH", &path)
            .env_remove("CUDA_VISIBLE_DEVICES")
            .output()
            .unwrap();
        assert!(!out.status.success() && text(&out).contains(message), "{flags:?}: {}", text(&out));
    }
    assert!(!s.root.join("refused").exists(), "nothing written for a refused run");
    let _ = std::fs::remove_dir_all(&s.root);
}

#[test]
fn the_disk_check_counts_the_running_cells_checkpoints() {
    // A model of 10^15 parameters: its epoch checkpoints cannot fit on any disk here.
    let s = setup(
        "disk",
        &GRID.replace(r#"models = ["org/model", "org/unsupported-model"]"#, r#"models = ["org/huge-model"]"#),
    );
    let out = s.run("out");
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("epoch checkpoints") && said.contains("--no-checkpoint"), "{said}");
    assert_eq!(s.log("out"), "", "nothing ran");
    // Without checkpoints the grid fits, and every cell is told to keep none.
    let out = s.command("out").arg("--no-checkpoint").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let log = s.log("out");
    assert_eq!(log.matches("finetune").count(), 6, "{log}");
    assert_eq!(log.matches("no-checkpoint").count(), 6, "{log}");
    let _ = std::fs::remove_dir_all(&s.root);
}

/// A distilling arm (`teacher = "dense"`) gets its seed's dense cell's exported model, and with
/// several jobs it starts only once that cell has ended: the dense cells keep their models, the
/// others do not.
#[test]
fn distilling_cells_wait_for_their_teacher() {
    let grid = r#"
name = "kd"
models = ["org/model"]
tasks = ["cola"]
amounts = [0.5, 0.9]
seeds = [1, 2]
[[arms]]
scheme = "global-l1"
schedule = "gradual"
teacher = "dense"
[[arms]]
scheme = "global-l1"
"#;
    let s = setup("kd", grid);
    let out = s.command("kd").args(["--jobs", "3"]).env("FAKE_SLEEP", "1").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let runs = s.root.join("kd/runs/org--model/cola");
    for seed in [1, 2] {
        assert!(
            runs.join(format!("dense/0.00/seed-{seed}/model/config.json")).is_file(),
            "the dense cell keeps its model"
        );
        for amount in ["0.50", "0.90"] {
            let kd = runs.join(format!("global-l1.default.hold.gradual.kd/{amount}/seed-{seed}"));
            let result = std::fs::read_to_string(kd.join("result.json")).unwrap();
            assert!(result.contains("finished"), "{}: {result}", kd.display());
            assert!(!kd.join("model").exists(), "other cells keep no model");
        }
    }
}
