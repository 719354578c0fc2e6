//! Reader for the official GLUE TSV files (`<dir>/<TASK>/{train,dev,test}.tsv`).
//!
//! The files are read with quoting off (CoLA sentences contain literal `"`), tolerate a last
//! line without a newline, and are checked strictly: exact header, exact column count, labels
//! from the task's label set, UTF-8 text. Every error names the file and the line.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::example::{Example, GlueSplit};
use crate::task::{GlueTask, Split, TaskSpec, TsvLayout};

/// The path of `split` of `task` under a GLUE-layout directory.
pub fn tsv_path(dir: &Path, task: GlueTask, split: Split) -> PathBuf {
    dir.join(task.spec().dir).join(format!("{}.tsv", split.tsv_stem()))
}

/// Read one split of `task` from the GLUE-layout directory `dir`.
///
/// A missing file is reported together with every other missing file of the task, so a
/// mistyped `--data-dir` gets one message that says what was expected where.
pub fn read_split(dir: &Path, task: GlueTask, split: Split) -> Result<GlueSplit> {
    let path = tsv_path(dir, task, split);
    if !path.is_file() {
        let expected = Split::ALL.iter().map(|&s| tsv_path(dir, task, s)).filter(|p| !p.is_file()).collect();
        return Err(Error::MissingFiles { task: task.spec().name, dir: dir.to_path_buf(), expected });
    }
    read_tsv(&path, task, split)
}

/// Read a TSV file laid out as `split` of `task`.
pub fn read_tsv(path: &Path, task: GlueTask, split: Split) -> Result<GlueSplit> {
    let file = File::open(path).map_err(|source| Error::Io { path: path.into(), source })?;
    let examples = parse(BufReader::new(file), path, task.spec(), split)?;
    if examples.is_empty() {
        return Err(Error::EmptySplit { path: path.into(), task: task.spec().name, split: split.to_string() });
    }
    tracing::debug!(path = %path.display(), rows = examples.len(), "read GLUE TSV");
    Ok(GlueSplit { task, split, source: path.into(), examples })
}

/// Parse TSV bytes laid out as `split` of `spec`. `path` is only used in error messages.
///
/// Exposed for tasks outside [`GlueTask`] (any [`TaskSpec`] works) and for fuzzing.
pub fn parse(reader: impl std::io::Read, path: &Path, spec: &TaskSpec, split: Split) -> Result<Vec<Example>> {
    let layout = spec.layout(split);
    let mut rows =
        csv::ReaderBuilder::new().delimiter(b'\t').quoting(false).has_headers(false).flexible(true).from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut examples = Vec::new();
    let mut header_pending = layout.header;
    loop {
        match rows.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(source) => return Err(Error::Csv { path: path.into(), source }),
        }
        let line = record.position().map_or(0, |p| p.line());
        if let Some(expected) = header_pending.take() {
            let found = record.iter().map(String::from_utf8_lossy).collect::<Vec<_>>().join("\t");
            if found != expected {
                return Err(Error::Header { path: path.into(), expected: expected.into(), found });
            }
            continue;
        }
        let row = Row { record: &record, path, line };
        examples.push(row.example(spec, layout, examples.len())?);
    }
    Ok(examples)
}

/// One data row, with what is needed to report errors on it.
struct Row<'a> {
    record: &'a csv::ByteRecord,
    path: &'a Path,
    line: u64,
}

impl Row<'_> {
    fn example(&self, spec: &TaskSpec, layout: &TsvLayout, row_number: usize) -> Result<Example> {
        if self.record.len() != layout.columns {
            return Err(Error::ColumnCount {
                path: self.path.into(),
                line: self.line,
                expected: layout.columns,
                found: self.record.len(),
            });
        }
        let label = match layout.label {
            Some(col) => Some(self.label(spec, col)?),
            None => None,
        };
        let idx = match layout.index {
            Some(col) => self.index(col)?,
            None => u32::try_from(row_number).unwrap_or(u32::MAX),
        };
        Ok(Example {
            idx,
            text_a: self.text(layout.text_a)?.to_owned(),
            text_b: layout.text_b.map(|col| self.text(col).map(str::to_owned)).transpose()?,
            label,
        })
    }

    fn text(&self, col: usize) -> Result<&str> {
        std::str::from_utf8(&self.record[col]).map_err(|_| Error::Utf8 {
            path: self.path.into(),
            line: self.line,
            column: col + 1,
        })
    }

    fn label(&self, spec: &TaskSpec, col: usize) -> Result<u32> {
        let value = self.text(col)?;
        match spec.label_values.iter().position(|v| *v == value) {
            Some(id) => Ok(id as u32),
            None => Err(Error::Label {
                path: self.path.into(),
                line: self.line,
                value: value.into(),
                allowed: spec.label_values.iter().map(|v| v.to_string()).collect(),
            }),
        }
    }

    fn index(&self, col: usize) -> Result<u32> {
        let value = self.text(col)?;
        value.parse().map_err(|_| Error::Index { path: self.path.into(), line: self.line, value: value.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{COLA, SST2};

    fn parse_str(text: &[u8], spec: &TaskSpec, split: Split) -> Result<Vec<Example>> {
        parse(text, Path::new("x.tsv"), spec, split)
    }

    #[test]
    fn sst2_header_labels_and_trailing_space_kept() {
        let rows = parse_str(b"sentence\tlabel\nit 's fine \t1\nbad \t0\n", &SST2, Split::Train).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], Example { idx: 0, text_a: "it 's fine ".into(), text_b: None, label: Some(1) });
        assert_eq!(rows[1].label, Some(0));
        assert_eq!(rows[1].idx, 1);
    }

    #[test]
    fn cola_has_no_header_and_keeps_quotes() {
        let text = b"gj04\t1\t\tHe said \"no.\nclc95\t0\t*\tThe more he reads, the more books I wonder.";
        let rows = parse_str(text, &COLA, Split::Dev).unwrap();
        assert_eq!(rows.len(), 2, "last line without newline is read");
        assert_eq!(rows[0].text_a, "He said \"no.");
        assert_eq!(rows[1].label, Some(0));
        assert_eq!(rows[1].text_a, "The more he reads, the more books I wonder.");
    }

    #[test]
    fn test_split_reads_index_and_no_label() {
        let rows = parse_str(b"index\tsentence\n0\ta\n7\tb\n", &COLA, Split::Test).unwrap();
        assert_eq!(rows.iter().map(|r| (r.idx, r.label)).collect::<Vec<_>>(), [(0, None), (7, None)]);
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        let rows = parse_str(b"sentence\tlabel\r\ngood \t1\r\n", &SST2, Split::Dev).unwrap();
        assert_eq!(rows[0].text_a, "good ");
    }

    #[test]
    fn stray_tab_names_line_and_counts() {
        let err = parse_str(b"sentence\tlabel\nok \t1\nbad\ttab \t0\n", &SST2, Split::Train).unwrap_err();
        assert_eq!(err.to_string(), "x.tsv:3: expected 2 tab-separated columns, found 3");
    }

    #[test]
    fn label_outside_the_set_is_rejected() {
        let err = parse_str(b"gj04\t2\t\tA sentence.\n", &COLA, Split::Train).unwrap_err();
        assert_eq!(err.to_string(), "x.tsv:1: label \"2\" is not one of 0, 1");
    }

    #[test]
    fn wrong_header_is_rejected() {
        let err = parse_str(b"text\tlabel\na \t1\n", &SST2, Split::Train).unwrap_err();
        assert!(err.to_string().contains("expected the header \"sentence\\tlabel\""), "{err}");
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let err = parse_str(b"sentence\tlabel\nok \t1\nbad \xff\t1\n", &SST2, Split::Train).unwrap_err();
        assert_eq!(err.to_string(), "x.tsv:3: column 1 is not valid UTF-8");
    }

    #[test]
    fn bad_index_is_rejected() {
        let err = parse_str(b"index\tsentence\n-1\ta\n", &SST2, Split::Test).unwrap_err();
        assert_eq!(err.to_string(), "x.tsv:2: index \"-1\" is not a non-negative integer");
    }

    #[test]
    fn missing_directory_lists_expected_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_split(dir.path(), GlueTask::Cola, Split::Train).unwrap_err();
        let msg = err.to_string();
        for stem in ["train", "dev", "test"] {
            assert!(msg.contains(&format!("CoLA/{stem}.tsv")), "{msg}");
        }
        assert!(msg.starts_with("GLUE cola data not found under"), "{msg}");
    }

    #[test]
    fn header_only_file_is_an_empty_split() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("SST-2")).unwrap();
        std::fs::write(dir.path().join("SST-2/dev.tsv"), "sentence\tlabel\n").unwrap();
        let err = read_split(dir.path(), GlueTask::Sst2, Split::Dev).unwrap_err();
        assert!(matches!(err, Error::EmptySplit { .. }), "{err}");
        assert!(err.to_string().ends_with("the dev split of sst2 has no rows"), "{err}");
    }
}
