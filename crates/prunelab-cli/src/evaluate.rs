//! `prunelab evaluate`: metrics of a model on a labelled split, or GLUE submission predictions
//! on the test split.

use std::path::PathBuf;

use anyhow::{Result, bail};
use prunelab_glue::{GlueBatcher, GlueTask, PaddingSide, Split, TextEncoder};
use prunelab_models::load_classifier;
use prunelab_prune::file::write_atomic;
use prunelab_train::{evaluate, predict};

use crate::{backend, common};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SplitArg {
    /// Labelled: prints and writes metrics
    Dev,
    /// Unlabelled: writes predictions in GLUE's submission format
    Test,
    /// Labelled training data
    Train,
}

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// A model directory (e.g. `finetune --out`'s model/) or a Hub id
    model: String,
    /// Hub revision, for Hub ids
    #[arg(long, default_value = "main")]
    revision: String,
    /// The GLUE task
    #[arg(long, value_enum)]
    task: GlueTask,
    /// The split
    #[arg(long, value_enum, default_value_t = SplitArg::Dev)]
    split: SplitArg,
    #[command(flatten)]
    data: crate::common::GlueDataArgs,
    /// tokenizer.json (default: the model's own)
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// Truncation length
    #[arg(long, default_value_t = 128)]
    max_length: usize,
    /// Batch size
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Write evaluation.json (labelled splits) or test_predictions.tsv (test) here
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Seed of a classification head the checkpoint lacks (drawn new, untrained: warned)
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl EvaluateArgs {
    pub fn run(self) -> Result<()> {
        let files = common::model_files(&self.model, &self.revision)?;
        let tokenizer = common::tokenizer_file(self.tokenizer.as_deref(), &files)?;
        let encoder = TextEncoder::from_file(&tokenizer)?.with_max_length(self.max_length)?;
        let source = self.data.source();
        let split = match self.split {
            SplitArg::Dev => Split::Dev,
            SplitArg::Test => Split::Test,
            SplitArg::Train => Split::Train,
        };
        let data = source.load(self.task, split)?;
        let device = backend::device();
        // Seed before loading: a checkpoint without a classification head gets a new one drawn
        // from the backend's generator, and two runs of one command must print the same scores.
        <backend::Backend as burn::tensor::backend::Backend>::seed(&device, self.seed);
        let model = load_classifier::<backend::Backend>(&files, self.task.spec().num_labels(), &device)?.model;
        if self.max_length > model.max_positions() {
            bail!("--max-length {} exceeds the model's {} positions", self.max_length, model.max_positions());
        }
        let batcher = GlueBatcher {
            pad_id: encoder.pad_id(),
            padding_side: PaddingSide::Right,
            token_types: model.uses_token_types(),
        };
        let encoded = encoder.encode(&data.examples)?;
        if split == Split::Test {
            let Some(out) = &self.out else { bail!("--split test writes predictions: pass --out DIR") };
            let predictions = predict(&model, &encoded, &batcher, self.batch_size, &device);
            common::write_predictions(&out.join("test_predictions.tsv"), &predictions)?;
            #[allow(clippy::print_stdout)]
            {
                println!("wrote {} predictions to {}", predictions.len(), out.join("test_predictions.tsv").display());
            }
            return Ok(());
        }
        let evaluation = evaluate(&model, &encoded, self.task, &batcher, self.batch_size, &device)?;
        let s = &evaluation.scores;
        if let Some(out) = &self.out {
            let record = serde_json::json!({"model": files.name, "task": self.task, "split": split, "scores": s, "seconds": evaluation.seconds});
            write_atomic(&out.join("evaluation.json"), &serde_json::to_vec_pretty(&record)?)?;
        }
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{} on {} {split} ({} examples): {} {:.4} | accuracy {:.4}, mcc {:.4}, f1 {:.4}{}",
                files.name,
                self.task,
                s.examples,
                s.main.name(),
                s.main_value,
                s.accuracy,
                s.mcc,
                s.f1,
                if s.collapsed { " (collapsed: one class predicted)" } else { "" }
            );
        }
        Ok(())
    }
}
