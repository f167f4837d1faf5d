//! Names and paths: parsing and validation, pure.
//!
//! A path is a list of components separated by `/`, relative to the context it
//! is used in (`dbserver/db`). The empty string is the empty path (the context
//! itself). A component is 1 to [`MAX_COMPONENT_LEN`] bytes of ASCII letters,
//! digits and `. _ - : @ +`, other than `.` and `..`; so class names such as
//! `db.Table` are valid components.

use crate::api::NameError;
use std::fmt;

/// Separator of path components.
pub const SEPARATOR: char = '/';

/// Longest component, in bytes.
pub const MAX_COMPONENT_LEN: usize = 255;

/// Longest path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// Most components in one path.
pub const MAX_DEPTH: usize = 64;

/// A validated path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path {
    components: Vec<String>,
}

impl Path {
    /// Parses and validates `s`; `""` is the empty path.
    ///
    /// # Errors
    /// [`NameError::InvalidName`] for an empty component (`a//b`, a leading or
    /// trailing `/`), an illegal character, `.` or `..`, or a path too long or
    /// too deep.
    pub fn parse(s: &str) -> Result<Path, NameError> {
        if s.is_empty() {
            return Ok(Path::default());
        }
        let invalid = |reason: String| NameError::InvalidName {
            name: s.to_owned(),
            reason,
        };
        if s.len() > MAX_PATH_LEN {
            return Err(invalid(format!("longer than {MAX_PATH_LEN} bytes")));
        }
        let components: Vec<String> = s.split(SEPARATOR).map(str::to_owned).collect();
        if components.len() > MAX_DEPTH {
            return Err(invalid(format!("more than {MAX_DEPTH} components")));
        }
        for c in &components {
            if let Err(reason) = component_problem(c) {
                return Err(invalid(reason));
            }
        }
        Ok(Path { components })
    }

    /// The components, in order.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// True for the empty path.
    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// The components before the last one, and the last one; `None` for the empty path.
    pub fn split_last(&self) -> Option<(&[String], &str)> {
        self.components
            .split_last()
            .map(|(last, parent)| (parent, last.as_str()))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                write!(f, "{SEPARATOR}")?;
            }
            f.write_str(c)?;
        }
        Ok(())
    }
}

/// Checks one component (a name within a context, or a class name).
///
/// # Errors
/// [`NameError::InvalidName`] saying which rule `name` breaks.
pub fn check_component(name: &str) -> Result<(), NameError> {
    component_problem(name).map_err(|reason| NameError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

fn component_problem(c: &str) -> Result<(), String> {
    if c.is_empty() {
        return Err("empty component".into());
    }
    if c.len() > MAX_COMPONENT_LEN {
        return Err(format!("component longer than {MAX_COMPONENT_LEN} bytes"));
    }
    if c == "." || c == ".." {
        return Err(format!("`{c}` is not a valid component"));
    }
    if let Some(bad) = c.chars().find(|ch| !is_name_char(*ch)) {
        return Err(format!(
            "illegal character {bad:?} (use ASCII letters, digits and . _ - : @ +)"
        ));
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@' | '+')
}

/// `parent/child`, or `child` when `parent` is empty.
pub fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else if child.is_empty() {
        parent.to_owned()
    } else {
        format!("{parent}{SEPARATOR}{child}")
    }
}

/// The components of `components` joined by `/`.
pub(crate) fn join_all(components: &[String]) -> String {
    components.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> String {
        match Path::parse(s) {
            Err(NameError::InvalidName { name, reason }) => {
                assert_eq!(name, s);
                reason
            }
            other => panic!("{s:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn parses_nested_paths() {
        let p = Path::parse("dbserver/db").unwrap();
        assert_eq!(p.components(), ["dbserver", "db"]);
        assert_eq!(p.to_string(), "dbserver/db");
        let (parent, last) = p.split_last().unwrap();
        assert_eq!(parent, ["dbserver"]);
        assert_eq!(last, "db");
        let p = Path::parse("a/b/c.d_e-f:g@h+i").unwrap();
        assert_eq!(p.components().len(), 3);
    }

    #[test]
    fn empty_string_is_the_empty_path() {
        let p = Path::parse("").unwrap();
        assert!(p.is_empty());
        assert!(p.split_last().is_none());
        assert_eq!(p.to_string(), "");
    }

    #[test]
    fn empty_components_are_rejected() {
        for s in ["/", "a//b", "/a", "a/"] {
            assert_eq!(reason(s), "empty component", "{s}");
        }
    }

    #[test]
    fn illegal_characters_are_rejected() {
        for s in ["a b", "a/b c", "é", "a\0", "x*", "tab\t"] {
            assert!(reason(s).starts_with("illegal character"), "{s}");
        }
    }

    #[test]
    fn dots_and_lengths_are_rejected() {
        assert!(reason(".").contains("not a valid component"));
        assert!(reason("a/../b").contains("not a valid component"));
        assert!(reason(&"x".repeat(MAX_COMPONENT_LEN + 1)).contains("longer"));
        assert!(Path::parse(&"x".repeat(MAX_COMPONENT_LEN)).is_ok());
        let deep = vec!["a"; MAX_DEPTH + 1].join("/");
        assert!(reason(&deep).contains("components"));
        let long = vec!["x".repeat(200); 30].join("/");
        assert!(reason(&long).contains("longer than"));
    }

    #[test]
    fn single_components() {
        assert!(check_component("db.Table").is_ok());
        assert!(check_component("client-1a2b").is_ok());
        assert!(check_component("a/b").is_err());
        assert!(check_component("").is_err());
    }

    #[test]
    fn join_skips_empty_parts() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a", ""), "a");
        assert_eq!(join("a/b", "c"), "a/b/c");
        assert_eq!(join_all(&["a".into(), "b".into()]), "a/b");
    }
}
