//! Tokenization with the `tokenizers` crate from a model's `tokenizer.json`.
//!
//! Examples are encoded once, unpadded, truncated to `max_length` tokens (special tokens
//! included, `longest_first` for pairs, as `transformers` does); padding is dynamic and happens
//! in the [`GlueBatcher`](crate::GlueBatcher).

use std::path::{Path, PathBuf};

use tokenizers::{EncodeInput, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};
use crate::example::Example;

/// The maximum sequence length used unless another is asked for.
pub const DEFAULT_MAX_LENGTH: usize = 128;

/// Pad tokens tried, in order, when `tokenizer.json` configures no padding. GPT-2 has no pad
/// token; like `transformers` users we pad with its end-of-text token.
const PAD_TOKEN_CANDIDATES: [&str; 4] = ["[PAD]", "<pad>", "<|endoftext|>", "</s>"];

/// One tokenized example, unpadded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The example's index in its split.
    pub idx: u32,
    /// Token ids, special tokens included.
    pub input_ids: Vec<u32>,
    /// Segment ids (0 for the first sentence, 1 for the second), as the post-processor sets them.
    pub token_type_ids: Vec<u32>,
    /// The class id, `None` for unlabelled examples.
    pub label: Option<u32>,
}

/// A `tokenizer.json` set up for GLUE: truncation on, padding off.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    tokenizer: Tokenizer,
    path: PathBuf,
    max_length: usize,
    pad_id: u32,
}

impl TextEncoder {
    /// Load a `tokenizer.json` with the default maximum length (128).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let err = |message: String| Error::Tokenizer { path: path.into(), message };
        if !path.is_file() {
            return Err(err("no such file (expected a Hugging Face tokenizer.json)".into()));
        }
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| err(e.to_string()))?;
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| PAD_TOKEN_CANDIDATES.iter().find_map(|t| tokenizer.token_to_id(t)))
            .unwrap_or(0);
        tokenizer.with_padding(None);
        let mut encoder = Self { tokenizer, path: path.into(), max_length: DEFAULT_MAX_LENGTH, pad_id };
        encoder.set_truncation(Some(DEFAULT_MAX_LENGTH))?;
        Ok(encoder)
    }

    /// Use another maximum length (in tokens, special tokens included).
    pub fn with_max_length(mut self, max_length: usize) -> Result<Self> {
        self.set_truncation(Some(max_length))?;
        self.max_length = max_length;
        Ok(self)
    }

    fn set_truncation(&mut self, max_length: Option<usize>) -> Result<()> {
        let params = max_length.map(|max_length| TruncationParams {
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        });
        self.tokenizer
            .with_truncation(params)
            .map(|_| ())
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), message: e.to_string() })
    }

    /// The maximum length sequences are truncated to.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The id batches are padded with.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The `tokenizer.json` this encoder was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Encode examples (truncated, with special tokens, unpadded).
    pub fn encode(&self, examples: &[Example]) -> Result<Vec<Encoded>> {
        let encodings = self.encode_with(&self.tokenizer, examples)?;
        Ok(examples
            .iter()
            .zip(encodings)
            .map(|(example, enc)| Encoded {
                idx: example.idx,
                input_ids: enc.get_ids().to_vec(),
                token_type_ids: enc.get_type_ids().to_vec(),
                label: example.label,
            })
            .collect())
    }

    /// Token count of each example before truncation (special tokens included): what
    /// `data stats` reports, to choose `max_length`.
    pub fn untruncated_lengths(&self, examples: &[Example]) -> Result<Vec<usize>> {
        let mut untruncated = self.tokenizer.clone();
        untruncated
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), message: e.to_string() })?;
        Ok(self.encode_with(&untruncated, examples)?.iter().map(|e| e.get_ids().len()).collect())
    }

    fn encode_with(&self, tokenizer: &Tokenizer, examples: &[Example]) -> Result<Vec<tokenizers::Encoding>> {
        let inputs: Vec<EncodeInput> = examples
            .iter()
            .map(|e| match &e.text_b {
                Some(b) => (e.text_a.as_str(), b.as_str()).into(),
                None => e.text_a.as_str().into(),
            })
            .collect();
        tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), message: e.to_string() })
    }
}
