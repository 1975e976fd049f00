//! The shell's command language: a line split into tokens (words and the
//! operators `|`, `<`, `>`, `>>`, `&`) and parsed into a [`Pipeline`]:
//! its stages, each with its words and redirects, and whether it runs in
//! the background. Paths are made absolute against the current directory
//! here ([`absolute`]). Nothing here runs anything; a line that does not
//! parse is a [`SyntaxError`] with the message the shell prints.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A token of a line.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Pipe,
    From,
    To,
    Append,
    Background,
}

/// Why a line does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError(pub String);

/// Where a stage's output goes when redirected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The file's path, as typed.
    pub path: String,
    /// `>>`: add at the end (else `>`: empty the file first).
    pub append: bool,
}

/// One command of a pipeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stage {
    /// The program (or built-in) and its arguments.
    pub words: Vec<String>,
    /// `< path`.
    pub input: Option<String>,
    /// `> path` or `>> path`.
    pub output: Option<Output>,
}

/// A parsed line: stages joined by `|`, run in the background with `&`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pipeline {
    /// At least one stage, each with at least one word.
    pub stages: Vec<Stage>,
    /// Ends in `&`.
    pub background: bool,
}

fn tokens(line: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = line.chars().peekable();
    let flush = |word: &mut String, out: &mut Vec<Token>| {
        if !word.is_empty() {
            out.push(Token::Word(core::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        let operator = match c {
            '|' => Some(Token::Pipe),
            '<' => Some(Token::From),
            '&' => Some(Token::Background),
            '>' if chars.peek() == Some(&'>') => {
                chars.next();
                Some(Token::Append)
            }
            '>' => Some(Token::To),
            c if c.is_ascii_whitespace() => {
                flush(&mut word, &mut out);
                None
            }
            c => {
                word.push(c);
                None
            }
        };
        if let Some(operator) = operator {
            flush(&mut word, &mut out);
            out.push(operator);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Parses a line; `Ok(None)` for an empty one. `$?` words become `status`.
pub fn parse(line: &str, status: u32) -> Result<Option<Pipeline>, SyntaxError> {
    let mut tokens = tokens(line).into_iter().peekable();
    if tokens.peek().is_none() {
        return Ok(None);
    }
    let mut pipeline = Pipeline::default();
    let mut stage = Stage::default();
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(word) if word == "$?" => stage.words.push(status.to_string()),
            Token::Word(word) => stage.words.push(word),
            Token::Pipe => {
                if stage.words.is_empty() {
                    return Err(SyntaxError("a command is missing before |".into()));
                }
                if stage.output.is_some() {
                    return Err(SyntaxError(
                        "a stage's output cannot be both redirected and piped".into(),
                    ));
                }
                pipeline.stages.push(core::mem::take(&mut stage));
            }
            Token::From | Token::To | Token::Append => {
                let operator = match token {
                    Token::From => "<",
                    Token::To => ">",
                    _ => ">>",
                };
                let Some(Token::Word(path)) = tokens.next() else {
                    return Err(SyntaxError(format!(
                        "a file name is missing after {operator}"
                    )));
                };
                if token == Token::From {
                    if stage.input.is_some() || !pipeline.stages.is_empty() {
                        return Err(SyntaxError(
                            "only the first stage reads a file, and only one".into(),
                        ));
                    }
                    stage.input = Some(path);
                } else {
                    if stage.output.is_some() {
                        return Err(SyntaxError("a stage writes one file at most".into()));
                    }
                    stage.output = Some(Output {
                        path,
                        append: token == Token::Append,
                    });
                }
            }
            Token::Background => {
                if tokens.peek().is_some() {
                    return Err(SyntaxError("& must end the line".into()));
                }
                pipeline.background = true;
            }
        }
    }
    if stage.words.is_empty() {
        return Err(SyntaxError(if pipeline.stages.is_empty() {
            "a command is missing".into()
        } else {
            "a command is missing after |".into()
        }));
    }
    pipeline.stages.push(stage);
    Ok(Some(pipeline))
}

/// `path` made absolute against `directory` (itself absolute), with `.`
/// and `..` resolved (`..` of `/` is `/`).
pub fn absolute(directory: &str, path: &str) -> String {
    // One resolver for the shell and every program's file layer (D95).
    userlib::file::resolve(directory, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn stage(words: &[&str]) -> Stage {
        Stage {
            words: words.iter().map(|w| String::from(*w)).collect(),
            ..Stage::default()
        }
    }

    #[test]
    fn operators_need_no_spaces() {
        let parsed = parse("cat</tmp/a|wc -c>>/tmp/b &", 0);
        let mut first = stage(&["cat"]);
        first.input = Some("/tmp/a".into());
        let mut second = stage(&["wc", "-c"]);
        second.output = Some(Output {
            path: "/tmp/b".into(),
            append: true,
        });
        assert_eq!(
            parsed,
            Ok(Some(Pipeline {
                stages: vec![first, second],
                background: true
            }))
        );
        assert_eq!(parse("   ", 0), Ok(None));
        assert_eq!(
            parse("echo $? x", 7).map(|p| p.map(|p| p.stages[0].words.clone())),
            Ok(Some(vec!["echo".into(), "7".into(), "x".into()]))
        );
    }

    #[test]
    fn malformed_lines_say_why() {
        for (line, message) in [
            ("| wc", "a command is missing before |"),
            ("yes |", "a command is missing after |"),
            ("cat >", "a file name is missing after >"),
            ("cat < | wc", "a file name is missing after <"),
            (
                "a > x | b",
                "a stage's output cannot be both redirected and piped",
            ),
            (
                "a | b < x",
                "only the first stage reads a file, and only one",
            ),
            ("a > x >> y", "a stage writes one file at most"),
            ("a & b", "& must end the line"),
            ("> x", "a command is missing"),
        ] {
            assert_eq!(parse(line, 0), Err(SyntaxError(message.into())), "{line}");
        }
    }

    #[test]
    fn paths_resolve_against_the_directory() {
        assert_eq!(absolute("/tmp", "a"), "/tmp/a");
        assert_eq!(absolute("/tmp/d", "../a/./b"), "/tmp/a/b");
        assert_eq!(absolute("/tmp", "/srv/echo"), "/srv/echo");
        assert_eq!(absolute("/", ".."), "/");
        assert_eq!(absolute("/tmp/", "x/"), "/tmp/x");
    }
}
