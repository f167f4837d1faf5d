//! A small CSV reader (RFC 4180; pure, unit-tested): fields separated by
//! commas, optionally quoted with `"` (a doubled `""` inside quotes is one
//! quote; quoted fields may hold commas and line breaks), records separated
//! by LF or CRLF. Small enough not to need the `csv` crate for a
//! command-line import.

use crate::ClientError;

/// One field of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The text, quotes removed.
    pub text: String,
    /// Whether it was quoted (an empty quoted field is empty text, an empty
    /// unquoted one is null).
    pub quoted: bool,
}

/// One record, with the line it starts on (1-based) for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Line number of the record's first character.
    pub line: usize,
    /// Its fields.
    pub fields: Vec<Field>,
}

/// Splits `input` into records. Blank lines are skipped.
///
/// # Errors
/// [`ClientError::Input`] for a quote left open, or text after a closing quote.
pub fn parse(input: &str) -> Result<Vec<Record>, ClientError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut records = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    let mut field = Field {
        text: String::new(),
        quoted: false,
    };
    let mut line = 1;
    let mut record_line = 1;
    let mut chars = input.chars().peekable();
    let bad = |line: usize, what: &str| ClientError::Input(format!("csv line {line}: {what}"));
    while let Some(c) = chars.next() {
        match c {
            '"' if field.text.is_empty() && !field.quoted => {
                field.quoted = true;
                loop {
                    match chars.next() {
                        None => return Err(bad(record_line, "quoted field not closed")),
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.text.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            field.text.push(c);
                        }
                    }
                }
                match chars.peek() {
                    None | Some(',' | '\n' | '\r') => {}
                    Some(_) => return Err(bad(line, "text after a closing quote")),
                }
            }
            ',' => fields.push(std::mem::replace(
                &mut field,
                Field {
                    text: String::new(),
                    quoted: false,
                },
            )),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                end_record(&mut records, &mut fields, &mut field, record_line);
                line += 1;
                record_line = line;
            }
            c => {
                if field.quoted {
                    return Err(bad(line, "text after a closing quote"));
                }
                field.text.push(c);
            }
        }
    }
    end_record(&mut records, &mut fields, &mut field, record_line);
    Ok(records)
}

fn end_record(records: &mut Vec<Record>, fields: &mut Vec<Field>, field: &mut Field, line: usize) {
    let last = std::mem::replace(
        field,
        Field {
            text: String::new(),
            quoted: false,
        },
    );
    if fields.is_empty() && last.text.is_empty() && !last.quoted {
        return; // a blank line
    }
    fields.push(last);
    records.push(Record {
        line,
        fields: std::mem::take(fields),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<Vec<String>> {
        parse(input)
            .unwrap()
            .into_iter()
            .map(|r| r.fields.into_iter().map(|f| f.text).collect())
            .collect()
    }

    #[test]
    fn plain_and_quoted_fields() {
        assert_eq!(
            texts("a,b\r\n1,\"x, \"\"y\"\"\"\n\n\"multi\nline\",\n"),
            vec![
                vec!["a", "b"],
                vec!["1", "x, \"y\""],
                vec!["multi\nline", ""],
            ]
        );
    }

    #[test]
    fn empty_quoted_and_unquoted_fields_differ() {
        let r = parse("\"\",").unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].fields[0].quoted && r[0].fields[0].text.is_empty());
        assert!(!r[0].fields[1].quoted);
    }

    #[test]
    fn line_numbers_count_line_breaks_inside_quotes() {
        let r = parse("h\n\"a\nb\"\nc\n").unwrap();
        assert_eq!(r.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 2, 4]);
    }

    #[test]
    fn broken_quotes_are_refused() {
        assert!(parse("a,\"b\n").is_err());
        assert!(parse("\"a\"b,c\n").is_err());
    }
}
