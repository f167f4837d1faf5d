//! CSV files for `import-csv`, read a record at a time through the `csv`
//! crate (RFC 4180: quoted fields may hold commas, doubled quotes and line
//! breaks), each record turned into a row for given columns: an empty field
//! is null, anything else is read as for `insert` (see [`cli_value`]).
//! Errors name the line a record starts on.

use crate::ClientError;
use crate::schema::cli_value;
use dbserver::{Column, Value};
use std::fs::File;
use std::path::{Path, PathBuf};

/// An open CSV file, positioned after its header.
#[derive(Debug)]
pub struct CsvFile {
    reader: csv::Reader<std::io::BufReader<File>>,
    record: csv::StringRecord,
    path: PathBuf,
    size: u64,
}

impl CsvFile {
    /// Opens `path` and reads its header line: the column specs.
    ///
    /// # Errors
    /// [`ClientError::File`] when it cannot be read; [`ClientError::Input`]
    /// for an empty file or a header that is not CSV.
    pub fn open(path: &Path) -> Result<(CsvFile, Vec<String>), ClientError> {
        let file_err = |source| ClientError::File {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(file_err)?;
        let size = file.metadata().map_err(file_err)?.len();
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            // Records of the wrong length are reported here, with their line.
            .flexible(true)
            .from_reader(std::io::BufReader::new(file));
        let mut f = CsvFile {
            reader,
            record: csv::StringRecord::new(),
            path: path.to_owned(),
            size,
        };
        if !f.read()? {
            return Err(ClientError::Input(format!(
                "{}: empty file, expected a header line",
                path.display()
            )));
        }
        let header = f.record.iter().map(str::to_owned).collect();
        Ok((f, header))
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.reader.position().byte()
    }

    /// Reads the next record into `self.record`; false at the end.
    fn read(&mut self) -> Result<bool, ClientError> {
        self.reader.read_record(&mut self.record).map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            let what = match e.kind() {
                csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_owned(),
                csv::ErrorKind::Io(io) => io.to_string(),
                _ => e.to_string(),
            };
            ClientError::Input(format!("{}: csv line {line}: {what}", self.path.display()))
        })
    }

    /// The next record as a row for `columns`, checked against their types.
    ///
    /// # Errors
    /// [`ClientError::Input`] naming the line: broken CSV, a wrong number of
    /// fields, a field that does not fit its column.
    pub fn next_row(&mut self, columns: &[Column]) -> Result<Option<Vec<Value>>, ClientError> {
        if !self.read()? {
            return Ok(None);
        }
        let line = self.record.position().map_or(0, csv::Position::line);
        if self.record.len() != columns.len() {
            return Err(ClientError::Input(format!(
                "csv line {line}: {} fields, expected {}",
                self.record.len(),
                columns.len()
            )));
        }
        let mut row = Vec::with_capacity(columns.len());
        for (text, c) in self.record.iter().zip(columns) {
            let v = if text.is_empty() {
                Value::Null
            } else {
                cli_value(text, c.ty)
            };
            if let Some(found) = v.value_type().filter(|_| !c.ty.accepts(&v)) {
                return Err(ClientError::Input(format!(
                    "csv line {line}: column `{}` holds {}, got {found} `{text}`",
                    c.name, c.ty
                )));
            }
            row.push(v);
        }
        Ok(Some(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbserver::ValueType;

    fn cols() -> Vec<Column> {
        vec![
            Column::new("name", ValueType::Text),
            Column::new("born", ValueType::Int),
        ]
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.csv");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    fn rows(text: &str) -> Result<Vec<Vec<Value>>, ClientError> {
        let (_d, p) = file(text);
        let (mut f, header) = CsvFile::open(&p)?;
        assert_eq!(header, vec!["name", "born"]);
        let mut out = Vec::new();
        while let Some(r) = f.next_row(&cols())? {
            out.push(r);
        }
        Ok(out)
    }

    #[test]
    fn quoting_escapes_and_line_breaks_follow_rfc_4180() {
        let r = rows("name,born\r\n\"a, \"\"b\"\"\",1\n\"multi\nline\",\n007,3\n").unwrap();
        assert_eq!(
            r,
            vec![
                vec![Value::Text("a, \"b\"".into()), Value::Int(1)],
                vec![Value::Text("multi\nline".into()), Value::Null],
                vec![Value::Text("007".into()), Value::Int(3)],
            ]
        );
    }

    #[test]
    fn misfits_name_their_line() {
        let e = rows("name,born\na,1\n\"b\nc\",x\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("csv line 3: column `born`"), "{e}");
        let e = rows("name,born\na\n").unwrap_err().to_string();
        assert!(e.starts_with("csv line 2: 1 fields"), "{e}");
        let (_d, p) = file("");
        assert!(CsvFile::open(&p).is_err());
    }
}
