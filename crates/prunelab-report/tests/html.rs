//! `report.html` in a real browser: headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs) loads the page from `file://` with a view in its fragment — sorted by the mean,
//! descending, filtered to one arm — and the test reads the DOM the page's script left (rows
//! hidden and reordered, the count shown, one chart point per pruned cell with its value as a
//! tooltip) and a screenshot (not blank). Without a browser the test says "skipped".

use std::path::{Path, PathBuf};
use std::process::Command;

use prunelab_report::generate;
use serde_json::{Value, json};

/// The first Chromium on the `PATH`.
fn browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

fn result(task: &str, scheme: &str, amount: f64, seed: u64, main: f64) -> Value {
    let metric = if task == "cola" { "matthews" } else { "accuracy" };
    let eval = json!({"accuracy": main, "mcc": main, "f1": 0.5, "main": metric, "main_value": main, "collapsed": false,
                      "examples": 100});
    let zeros = (amount * 800.0) as u64;
    let sparsity = json!({"scope": "default", "scope_total": {"zeros": zeros, "params": 800},
                          "all_total": {"zeros": zeros, "params": 1000}, "layers": []});
    json!({
        "status": "finished", "model": "gpt2", "task": task,
        "pruning": {"scheme": scheme, "amount": amount, "scope": "default", "masks_from": null, "mask_mode": "hold"},
        "hyperparameters": {"seed": seed},
        "epochs": [{"epoch": 1, "train_loss": 0.5, "steps": 10, "train_seconds": 1.0, "samples_per_second": 100.0,
                    "tokens_per_second": 1000.0, "eval_seconds": 0.1, "eval": eval}],
        "best_epoch": 1,
        "metrics": {"main_metric": if task == "cola" { "mcc" } else { "accuracy" }, "main": main, "accuracy": main,
                    "mcc": main, "f1": 0.5, "collapsed": false},
        "sparsity_after": sparsity,
        "inference": {"latency_ms_batch1_p50": 2.0, "latency_ms_batch1_p95": 3.0, "throughput_batch64_per_s": 900.0}
    })
}

fn write(dir: &Path, name: &str, value: &Value) {
    let path = dir.join("runs").join(name).join("result.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec(value).unwrap()).unwrap();
}

/// Two tasks × dense, global L1 at 50/90 % and random at 50/90 %, two seeds: 10 cells.
fn grid(dir: &Path) {
    for (task, base) in [("sst2", 0.9), ("cola", 0.4)] {
        for seed in [1, 2] {
            let jitter = 0.01 * seed as f64;
            write(dir, &format!("{task}/dense/{seed}"), &result(task, "none", 0.0, seed, base + jitter));
            for (scheme, drop) in [("global-l1", 0.05), ("random", 0.2)] {
                for amount in [0.5, 0.9] {
                    let main = base - drop * amount * 2.0 + jitter;
                    write(dir, &format!("{task}/{scheme}/{amount}/{seed}"), &result(task, scheme, amount, seed, main));
                }
            }
        }
    }
}

/// `name="value"` of an attribute in a tag's text.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[start..].split('"').next()
}

#[test]
fn the_html_report_sorts_filters_and_draws_in_a_browser() {
    let Some(chromium) = browser() else {
        #[allow(clippy::print_stdout)]
        {
            println!("skipped: no Chromium on the PATH (.ci/run installs Debian's `chromium`)");
        }
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    grid(dir.path());
    let out = dir.path().join("report");
    let report = generate(dir.path(), &out).unwrap();
    assert_eq!(report.cells.len(), 10);
    let page = std::fs::read_to_string(&report.html).unwrap();
    for remote in ["src=\"http", "href=\"http", "<script src", "<link ", "@import"] {
        assert!(!page.contains(remote), "self-contained: the page holds {remote}");
    }

    let url = format!("file://{}#sort=mean:desc&arm=global-l1/default/hold", report.html.display());
    let profile = dir.path().join("chromium-profile");
    let headless = |extra: &[&str]| {
        let out = Command::new(&chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium runs");
        assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let dom = String::from_utf8(headless(&["--virtual-time-budget=3000", "--dump-dom"]).stdout).unwrap();

    let body = &dom[dom.find("<tbody>").expect("the table")..dom.find("</tbody>").unwrap()];
    let rows: Vec<&str> = body.split("<tr ").skip(1).map(|r| &r[..r.find('>').unwrap()]).collect();
    assert_eq!(rows.len(), 10, "{body}");
    let visible: Vec<&&str> = rows.iter().filter(|r| !r.contains("display: none")).collect();
    assert_eq!(visible.len(), 4, "global-l1 at 50 and 90 % on two tasks: {body}");
    assert!(visible.iter().all(|r| attribute(r, "data-arm") == Some("global-l1/default/hold")), "{body}");
    let means: Vec<f64> = visible.iter().map(|r| attribute(r, "data-mean").unwrap().parse().unwrap()).collect();
    assert!(means.windows(2).all(|w| w[0] >= w[1]), "sorted by the mean, descending: {means:?}");
    assert!(dom.contains("4 of 10 cells shown"), "the count");
    assert!(dom.contains("class=\"desc\"") && dom.contains(">mean<"), "the sorted column is marked");
    // The page's own chart points (the inlined report plots have circles of their own).
    let points = dom.split("<circle").skip(1).filter(|c| c[..c.find('>').unwrap()].contains("data-arm=")).count();
    assert_eq!(points, 8, "one point per pruned cell: 2 arms × 2 amounts × 2 tasks");
    assert!(dom.contains("global-l1/default/hold at 0.9: ") && dom.contains(" ± "), "values on hover");

    let shot = dir.path().join("shot.png");
    headless(&["--window-size=1280,1400", "--virtual-time-budget=3000", &format!("--screenshot={}", shot.display())]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let inked = pixels[..info.buffer_size()].chunks(channels).filter(|p| p.iter().take(3).any(|c| *c < 200)).count();
    let share = inked as f64 / (info.width * info.height) as f64;
    assert!(share > 0.01, "the screenshot is not blank: {:.2}% of its pixels are drawn", 100.0 * share);
}
