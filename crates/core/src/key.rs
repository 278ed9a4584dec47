//! The identity of a preview: a project and a git branch, validated.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One preview per (project, branch). Both parts are validated on
/// construction, so a `PreviewKey` in hand is always well formed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PreviewKey {
    pub project: String,
    pub branch: String,
}

impl PreviewKey {
    /// Validates both parts; the error names the part and the rule broken.
    pub fn new(project: &str, branch: &str) -> Result<Self, KeyError> {
        validate_project(project).map_err(KeyError::Project)?;
        validate_branch(branch).map_err(KeyError::Branch)?;
        Ok(Self {
            project: project.to_owned(),
            branch: branch.to_owned(),
        })
    }
}

impl fmt::Display for PreviewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.project, self.branch)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("project: {0}")]
    Project(ProjectError),
    #[error("branch: {0}")]
    Branch(BranchError),
}

impl KeyError {
    /// The part that broke a rule, as a field name for an error reply.
    pub fn field(&self) -> &'static str {
        match self {
            KeyError::Project(_) => "project",
            KeyError::Branch(_) => "branch",
        }
    }

    /// The rule alone, without the field in front (the reply names the
    /// field apart).
    pub fn rule(&self) -> String {
        match self {
            KeyError::Project(e) => e.to_string(),
            KeyError::Branch(e) => e.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 100 bytes")]
    TooLong,
    #[error("may contain only letters, digits and `-_./` (found {0:?})")]
    BadCharacter(char),
}

/// Project names look like GitHub's `owner/repo`.
pub fn validate_project(project: &str) -> Result<(), ProjectError> {
    if project.is_empty() {
        return Err(ProjectError::Empty);
    }
    if project.len() > 100 {
        return Err(ProjectError::TooLong);
    }
    if let Some(c) = project
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
    {
        return Err(ProjectError::BadCharacter(c));
    }
    Ok(())
}

/// The rules of `git check-ref-format --branch`, each a variant so that a
/// refusal can say exactly which one a name broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BranchError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 255 bytes")]
    TooLong,
    #[error("must not contain `..`")]
    DoubleDot,
    #[error("must not contain control characters or spaces")]
    ControlOrSpace,
    /// Invisible and direction-changing characters make a name render
    /// unlike the bytes it is matched by (a right-to-left override shows
    /// `qanote/issue-42` for a different branch).
    #[error("must not contain invisible or direction-changing characters (found U+{:04X})", u32::from(*.0))]
    FormatCharacter(char),
    #[error("must not contain any of `~ ^ : ? * [ \\` (found {0:?})")]
    ForbiddenCharacter(char),
    #[error("must not start or end with `/` or contain `//`")]
    BadSlash,
    #[error("no path component may start with `.`")]
    ComponentStartsWithDot,
    #[error("no path component may end with `.lock`")]
    ComponentEndsWithLock,
    #[error("must not end with `.`")]
    EndsWithDot,
    #[error("must not contain `@{{`")]
    AtBrace,
    #[error("must not be the single character `@`")]
    LoneAt,
    #[error("must not start with `-`")]
    LeadingDash,
}

/// Validates a branch name by git's ref-name rules.
pub fn validate_branch(branch: &str) -> Result<(), BranchError> {
    if branch.is_empty() {
        return Err(BranchError::Empty);
    }
    if branch.len() > 255 {
        return Err(BranchError::TooLong);
    }
    if branch == "@" {
        return Err(BranchError::LoneAt);
    }
    if branch.starts_with('-') {
        return Err(BranchError::LeadingDash);
    }
    for c in branch.chars() {
        // Every Unicode space too: a no-break space looks like a space.
        if c.is_control() || c.is_whitespace() {
            return Err(BranchError::ControlOrSpace);
        }
        if is_format_character(c) {
            return Err(BranchError::FormatCharacter(c));
        }
        if matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\') {
            return Err(BranchError::ForbiddenCharacter(c));
        }
    }
    if branch.contains("..") {
        return Err(BranchError::DoubleDot);
    }
    if branch.contains("@{") {
        return Err(BranchError::AtBrace);
    }
    if branch.starts_with('/') || branch.ends_with('/') || branch.contains("//") {
        return Err(BranchError::BadSlash);
    }
    if branch.ends_with('.') {
        return Err(BranchError::EndsWithDot);
    }
    for component in branch.split('/') {
        if component.starts_with('.') {
            return Err(BranchError::ComponentStartsWithDot);
        }
        if component.ends_with(".lock") {
            return Err(BranchError::ComponentEndsWithLock);
        }
    }
    Ok(())
}

/// Unicode's format characters (general category Cf, Unicode 15): zero
/// widths, joiners, bidirectional marks, embeddings, overrides and
/// isolates, the byte-order mark, and the invisible tag characters.
fn is_format_character(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_branches() {
        for b in ["main", "qanote/issue-42", "feature/Foo", "a.b/c_d", "v1@2"] {
            assert_eq!(validate_branch(b), Ok(()), "{b}");
        }
    }

    #[test]
    fn refuses_each_git_rule_by_name() {
        let cases = [
            ("", BranchError::Empty),
            ("a..b", BranchError::DoubleDot),
            ("a b", BranchError::ControlOrSpace),
            ("a\tb", BranchError::ControlOrSpace),
            ("a~1", BranchError::ForbiddenCharacter('~')),
            ("a:b", BranchError::ForbiddenCharacter(':')),
            ("/a", BranchError::BadSlash),
            ("a//b", BranchError::BadSlash),
            ("a/", BranchError::BadSlash),
            ("a/.hidden", BranchError::ComponentStartsWithDot),
            ("topic.lock", BranchError::ComponentEndsWithLock),
            ("a.lock/b", BranchError::ComponentEndsWithLock),
            ("a.", BranchError::EndsWithDot),
            ("a@{1}", BranchError::AtBrace),
            ("@", BranchError::LoneAt),
            ("-x", BranchError::LeadingDash),
            ("a\u{a0}b", BranchError::ControlOrSpace),
            (
                "qanote/\u{202e}24-eussi",
                BranchError::FormatCharacter('\u{202e}'),
            ),
            ("a\u{200b}b", BranchError::FormatCharacter('\u{200b}')),
            ("a\u{2066}b", BranchError::FormatCharacter('\u{2066}')),
            ("\u{feff}main", BranchError::FormatCharacter('\u{feff}')),
        ];
        for (branch, rule) in cases {
            assert_eq!(validate_branch(branch), Err(rule), "{branch:?}");
        }
        assert_eq!(validate_branch(&"a".repeat(256)), Err(BranchError::TooLong));
    }

    #[test]
    fn key_error_names_the_field() {
        let err = PreviewKey::new("acme/shop", "a..b").unwrap_err();
        assert_eq!(err.to_string(), "branch: must not contain `..`");
        let err = PreviewKey::new("", "main").unwrap_err();
        assert_eq!(err.to_string(), "project: must not be empty");
        assert_eq!(
            (err.field(), err.rule().as_str()),
            ("project", "must not be empty")
        );
    }

    #[test]
    fn format_character_rule_names_the_code_point() {
        let err = validate_branch("a\u{202e}b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "must not contain invisible or direction-changing characters (found U+202E)"
        );
    }

    proptest::proptest! {
        /// Whatever the input, validation answers (never panics), and a
        /// name it accepts holds no character that renders unlike itself.
        #[test]
        fn any_string_is_judged_and_accepted_names_are_visible(branch in "\\PC{0,40}|.{0,300}") {
            if validate_branch(&branch).is_ok() {
                proptest::prop_assert!(branch.chars().all(|c| !c.is_control() && !c.is_whitespace() && !is_format_character(c)));
                proptest::prop_assert!(!branch.is_empty() && branch.len() <= 255);
            }
        }
    }
}
