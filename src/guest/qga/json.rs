//! qemu-ga's JSON input path, byte for byte in what it answers: the lexer, the "streamer" that
//! groups tokens into messages, and the parser of qemu 7.2 (`qobject/json-lexer.c`,
//! `json-streamer.c`, `json-parser.c`), written from their documented rules and checked against
//! the real qemu-ga 7.2.22 (the expected texts in this module's tests were measured on it).
//!
//! What matters for a peer:
//! - The lexer knows tokens, not messages. A byte that cannot continue the current token (0xFF
//!   anywhere, a control character inside a string, an upper-case letter at the top level, `01`,
//!   `-x`) is a **lexical error**: one `JSON parse error, stray '<token so far>'` for the token,
//!   then the lexer **skips** everything up to a structural character (`{ } [ ] : ,`), an ASCII
//!   control character other than tab, or 0xFE/0xFF, and starts again there.
//! - The streamer counts braces and brackets. A token at the top level (nothing open) is a
//!   message on its own, which is why `this is not json` draws one error per word
//!   (`invalid keyword 'this'`, `'is'`, …); a message ends when the counts balance or one goes
//!   negative. A lexical error drops the tokens gathered so far.
//! - The parser then reads one value from the message's tokens; its errors are
//!   `JSON parse error, <reason>` with qemu's reasons (`expecting value`,
//!   `key is not a string in object`, `missing : in object pair`, `expected separator in dict`,
//!   `expected separator in list`, `duplicate key`, `invalid keyword 'x'`,
//!   `invalid escape sequence in string`, `\uXXXX is not a valid Unicode character`,
//!   `invalid UTF-8 sequence in string`).
//! - Limits ([`MAX_TOKEN_SIZE`], [`MAX_TOKEN_COUNT`], [`MAX_NESTING`]) are qemu's, with its texts.
//!
//! Known gaps: qemu's `%.17g` doubles include `inf` for overflowing literals, which a
//! `serde_json::Value` cannot hold (the mock gets `null`); qemu keeps object members in a hash
//! table, so when several members are wrong it may name another one first.

use serde_json::{Map, Number, Value};

/// qemu's `MAX_TOKEN_SIZE`: most bytes in one token, and in all the tokens of one message.
pub const MAX_TOKEN_SIZE: usize = 64 << 20;
/// qemu's `MAX_TOKEN_COUNT`: most tokens in one message.
pub const MAX_TOKEN_COUNT: usize = 2 << 20;
/// qemu's `MAX_NESTING`: most open braces and brackets in one message.
pub const MAX_NESTING: i64 = 1 << 10;

/// One message of the input: a value for the dispatcher, or the `desc` of a parse error.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A complete JSON value (any type: the dispatcher checks that it is an object).
    Value(Value),
    /// A lexical or parse error, e.g. `JSON parse error, stray '\u{FFFD}'`.
    Error(String),
}

/// Lexer states (qemu's `IN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Start,
    Recovery,
    DqString,
    DqEscape,
    SqString,
    SqEscape,
    Zero,
    Sign,
    Digits,
    Mantissa,
    MantissaDigits,
    ExpE,
    ExpSign,
    ExpDigits,
    Keyword,
}

/// Token types (qemu's `JSON_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Integer,
    Float,
    Keyword,
    String,
    /// A token cut at [`MAX_TOKEN_SIZE`]; the parser takes it for no value at all.
    Cut,
}

/// What one byte does in one state.
enum Step {
    /// Consume the byte into the token and move to the state.
    Go(Lex),
    /// Consume the byte, end the token as this kind.
    End(Kind),
    /// Do not consume: end the token as this kind and look at the byte again from the start.
    EndBefore(Kind),
    /// Consume and drop (white space between tokens).
    Skip,
    /// Consume the byte into the token, which is a lexical error; then recover.
    Error,
    /// Consume and drop while recovering.
    Recover,
    /// Stop recovering before this byte and look at it again from the start.
    Resume,
}

fn step(state: Lex, b: u8) -> Step {
    use Lex::*;
    let digit = b.is_ascii_digit();
    match state {
        Recovery => match b {
            b'\t' => Step::Recover,
            0x00..=0x1F | 0xFE | 0xFF | b'[' | b']' | b'{' | b'}' | b':' | b',' => Step::Resume,
            _ => Step::Recover,
        },
        DqString | SqString => {
            let quote = if state == DqString { b'"' } else { b'\'' };
            match b {
                b'\\' => Step::Go(if state == DqString {
                    DqEscape
                } else {
                    SqEscape
                }),
                _ if b == quote => Step::End(Kind::String),
                0x20..=0xFD => Step::Go(state),
                _ => Step::Error,
            }
        }
        DqEscape | SqEscape => match b {
            0x20..=0xFD => Step::Go(if state == DqEscape {
                DqString
            } else {
                SqString
            }),
            _ => Step::Error,
        },
        Zero => match b {
            b'.' => Step::Go(Mantissa),
            _ if digit => Step::Error,
            _ => Step::EndBefore(Kind::Integer),
        },
        Sign => match b {
            b'0' => Step::Go(Zero),
            _ if digit => Step::Go(Digits),
            _ => Step::Error,
        },
        Digits => match b {
            b'e' | b'E' => Step::Go(ExpE),
            b'.' => Step::Go(Mantissa),
            _ if digit => Step::Go(Digits),
            _ => Step::EndBefore(Kind::Integer),
        },
        Mantissa => {
            if digit {
                Step::Go(MantissaDigits)
            } else {
                Step::Error
            }
        }
        MantissaDigits => match b {
            b'e' | b'E' => Step::Go(ExpE),
            _ if digit => Step::Go(MantissaDigits),
            _ => Step::EndBefore(Kind::Float),
        },
        ExpE => match b {
            b'-' | b'+' => Step::Go(ExpSign),
            _ if digit => Step::Go(ExpDigits),
            _ => Step::Error,
        },
        ExpSign => {
            if digit {
                Step::Go(ExpDigits)
            } else {
                Step::Error
            }
        }
        ExpDigits => {
            if digit {
                Step::Go(ExpDigits)
            } else {
                Step::EndBefore(Kind::Float)
            }
        }
        Keyword => match b {
            b'a'..=b'z' => Step::Go(Keyword),
            _ => Step::EndBefore(Kind::Keyword),
        },
        Start => match b {
            b'"' => Step::Go(DqString),
            b'\'' => Step::Go(SqString),
            b'0' => Step::Go(Zero),
            b'1'..=b'9' => Step::Go(Digits),
            b'-' => Step::Go(Sign),
            b'{' => Step::End(Kind::LCurly),
            b'}' => Step::End(Kind::RCurly),
            b'[' => Step::End(Kind::LSquare),
            b']' => Step::End(Kind::RSquare),
            b',' => Step::End(Kind::Comma),
            b':' => Step::End(Kind::Colon),
            b'a'..=b'z' => Step::Go(Keyword),
            b' ' | b'\t' | b'\r' | b'\n' => Step::Skip,
            _ => Step::Error,
        },
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    text: Vec<u8>,
}

/// qemu-ga's input side: feed it bytes, get [`Parsed`] messages. State carries across calls
/// (and, in qemu-ga, across client connections).
#[derive(Debug, Clone)]
pub struct QemuJsonStream {
    state: Lex,
    token: Vec<u8>,
    tokens: Vec<Token>,
    token_size: usize,
    braces: i64,
    brackets: i64,
}

impl Default for QemuJsonStream {
    fn default() -> Self {
        Self::new()
    }
}

impl QemuJsonStream {
    /// A stream in its initial state.
    pub fn new() -> Self {
        Self {
            state: Lex::Start,
            token: Vec::new(),
            tokens: Vec::new(),
            token_size: 0,
            braces: 0,
            brackets: 0,
        }
    }

    /// Whether the stream is between messages (no token or message started, not recovering).
    pub fn is_idle(&self) -> bool {
        self.state == Lex::Start && self.tokens.is_empty()
    }

    /// Feeds bytes; every message they complete is appended to `out`, in order.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Parsed>) {
        for &b in bytes {
            self.feed_byte(b, out);
        }
    }

    fn feed_byte(&mut self, b: u8, out: &mut Vec<Parsed>) {
        // Each byte is looked at most twice (once more after a look-ahead end or a resume).
        for _ in 0..2 {
            match step(self.state, b) {
                Step::Go(next) => {
                    self.token.push(b);
                    self.state = next;
                }
                Step::End(kind) => {
                    self.token.push(b);
                    self.end_token(kind, out);
                }
                Step::EndBefore(kind) => {
                    self.end_token(kind, out);
                    continue;
                }
                Step::Skip => self.token.clear(),
                Step::Error => {
                    self.token.push(b);
                    let text = std::mem::take(&mut self.token);
                    self.state = Lex::Recovery;
                    self.error(stray(&text), out);
                }
                Step::Recover => {}
                Step::Resume => {
                    self.state = Lex::Start;
                    continue;
                }
            }
            break;
        }
        if self.token.len() > MAX_TOKEN_SIZE {
            // qemu hands the oversize token on as it is, typed by the lexer state.
            let text = std::mem::take(&mut self.token);
            self.state = Lex::Start;
            self.process(Kind::Cut, text, out);
        }
    }

    fn end_token(&mut self, kind: Kind, out: &mut Vec<Parsed>) {
        let text = std::mem::take(&mut self.token);
        self.state = Lex::Start;
        self.process(kind, text, out);
    }

    /// qemu's `json_message_process_token`.
    fn process(&mut self, kind: Kind, text: Vec<u8>, out: &mut Vec<Parsed>) {
        match kind {
            Kind::LCurly => self.braces += 1,
            Kind::RCurly => self.braces -= 1,
            Kind::LSquare => self.brackets += 1,
            Kind::RSquare => self.brackets -= 1,
            _ => {}
        }
        if self.token_size + text.len() + 1 > MAX_TOKEN_SIZE {
            return self.error("JSON token size limit exceeded".into(), out);
        }
        if self.tokens.len() + 1 > MAX_TOKEN_COUNT {
            return self.error("JSON token count limit exceeded".into(), out);
        }
        if self.braces + self.brackets > MAX_NESTING {
            return self.error("JSON nesting depth limit exceeded".into(), out);
        }
        self.token_size += text.len();
        self.tokens.push(Token { kind, text });
        if (self.braces > 0 || self.brackets > 0) && self.braces >= 0 && self.brackets >= 0 {
            return;
        }
        let tokens = std::mem::take(&mut self.tokens);
        self.reset_message();
        out.push(match Parser::new(&tokens).parse() {
            Ok(value) => Parsed::Value(value),
            Err(reason) => Parsed::Error(format!("JSON parse error, {reason}")),
        });
    }

    fn error(&mut self, desc: String, out: &mut Vec<Parsed>) {
        self.tokens.clear();
        self.reset_message();
        out.push(Parsed::Error(desc));
    }

    fn reset_message(&mut self) {
        self.braces = 0;
        self.brackets = 0;
        self.token_size = 0;
    }
}

/// `JSON parse error, stray '<token>'`, the token cut at a NUL as C's `%s` does, invalid UTF-8
/// shown as U+FFFD.
fn stray(text: &[u8]) -> String {
    let end = memchr::memchr(0, text).unwrap_or(text.len());
    let shown = String::from_utf8_lossy(text.get(..end).unwrap_or_default());
    format!("JSON parse error, stray '{shown}'")
}

/// The recursive-descent parser over one message's tokens.
struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(tokens: &'a [Token]) -> Self {
        Self { tokens, pos: 0 }
    }

    fn parse(&mut self) -> Result<Value, String> {
        self.value()
    }

    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    fn pop(&mut self) -> Result<&'a Token, String> {
        let token = self.peek().ok_or_else(|| "premature EOI".to_string())?;
        self.pos += 1;
        Ok(token)
    }

    fn value(&mut self) -> Result<Value, String> {
        let token = self.peek().ok_or_else(|| "premature EOI".to_string())?;
        match token.kind {
            Kind::LCurly => self.object(),
            Kind::LSquare => self.array(),
            Kind::Integer => {
                self.pos += 1;
                Ok(integer(&token.text))
            }
            Kind::Float => {
                self.pos += 1;
                Ok(float(&token.text))
            }
            Kind::String => {
                self.pos += 1;
                string(&token.text).map(Value::String)
            }
            Kind::Keyword => {
                self.pos += 1;
                match token.text.as_slice() {
                    b"true" => Ok(Value::Bool(true)),
                    b"false" => Ok(Value::Bool(false)),
                    b"null" => Ok(Value::Null),
                    other => Err(format!(
                        "invalid keyword '{}'",
                        String::from_utf8_lossy(other)
                    )),
                }
            }
            _ => Err("expecting value".into()),
        }
    }

    fn object(&mut self) -> Result<Value, String> {
        self.pop()?; // {
        let mut map = Map::new();
        if self.peek().ok_or("premature EOI")?.kind == Kind::RCurly {
            self.pop()?;
            return Ok(Value::Object(map));
        }
        loop {
            self.pair(&mut map)?;
            match self.pop()?.kind {
                Kind::RCurly => return Ok(Value::Object(map)),
                Kind::Comma => {}
                _ => return Err("expected separator in dict".into()),
            }
        }
    }

    fn pair(&mut self, map: &mut Map<String, Value>) -> Result<(), String> {
        self.peek().ok_or("premature EOI")?;
        let Value::String(key) = self.value()? else {
            return Err("key is not a string in object".into());
        };
        if self.pop()?.kind != Kind::Colon {
            return Err("missing : in object pair".into());
        }
        let value = self.value()?;
        if map.contains_key(&key) {
            return Err("duplicate key".into());
        }
        map.insert(key, value);
        Ok(())
    }

    fn array(&mut self) -> Result<Value, String> {
        self.pop()?; // [
        let mut items = Vec::new();
        if self.peek().ok_or("premature EOI")?.kind == Kind::RSquare {
            self.pop()?;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            match self.pop()?.kind {
                Kind::RSquare => return Ok(Value::Array(items)),
                Kind::Comma => {}
                _ => return Err("expected separator in list".into()),
            }
        }
    }
}

/// An integer token: an `i64`, else (not negative) a `u64`, else a double, as qemu does.
fn integer(text: &[u8]) -> Value {
    let s = String::from_utf8_lossy(text);
    if let Ok(v) = s.parse::<i64>() {
        return Value::from(v);
    }
    if !s.starts_with('-')
        && let Ok(v) = s.parse::<u64>()
    {
        return Value::from(v);
    }
    float(text)
}

/// A float token (or an integer too large for 64 bits) as a double; `null` for an infinity,
/// which qemu keeps (and writes as `inf`) but JSON values cannot hold.
fn float(text: &[u8]) -> Value {
    String::from_utf8_lossy(text)
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// Decodes a string token (with its quotes) as qemu's `parse_string` does.
fn string(text: &[u8]) -> Result<String, String> {
    let inner = text
        .get(1..text.len().saturating_sub(1))
        .unwrap_or_default();
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    while let Some(&b) = inner.get(i) {
        if b != b'\\' {
            let (c, len) = mod_utf8_char(inner.get(i..).unwrap_or_default())
                .ok_or_else(|| "invalid UTF-8 sequence in string".to_string())?;
            out.push(c);
            i += len;
            continue;
        }
        let begin = i;
        let escape = inner.get(i + 1).copied();
        i += 2;
        let plain = match escape {
            Some(b'"') => '"',
            Some(b'\'') => '\'',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let mut cp = hex4(inner.get(i..i + 4));
                i += 4;
                if (0xD800..=0xDBFF).contains(&cp)
                    && inner.get(i) == Some(&b'\\')
                    && inner.get(i + 1) == Some(&b'u')
                {
                    let trailing = hex4(inner.get(i + 2..i + 6));
                    if (0xDC00..=0xDFFF).contains(&trailing) {
                        cp = 0x10000 + ((cp & 0x3FF) << 10) + (trailing & 0x3FF);
                        i += 6;
                    } else {
                        cp = -1;
                    }
                }
                match u32::try_from(cp).ok().and_then(char::from_u32) {
                    Some(c) => c,
                    None => {
                        // `%.*s` of the escape as written (cut where the token ends).
                        let shown = text.get(1 + begin..(1 + begin + 6).min(text.len()));
                        return Err(format!(
                            "{} is not a valid Unicode character",
                            String::from_utf8_lossy(shown.unwrap_or_default())
                        ));
                    }
                }
            }
            _ => return Err("invalid escape sequence in string".into()),
        };
        out.push(plain);
    }
    Ok(out)
}

/// Four hex digits, or -1.
fn hex4(digits: Option<&[u8]>) -> i64 {
    let Some(digits) = digits else { return -1 };
    let mut v = 0i64;
    for &d in digits {
        let Some(n) = (d as char).to_digit(16) else {
            return -1;
        };
        v = v * 16 + i64::from(n);
    }
    v
}

/// One character of "modified UTF-8" (qemu's `mod_utf8_codepoint`): UTF-8 where `C0 80` is
/// U+0000; other overlong forms, surrogates and code points past U+10FFFF are invalid.
fn mod_utf8_char(bytes: &[u8]) -> Option<(char, usize)> {
    let first = *bytes.first()?;
    if first < 0x80 {
        return Some((first as char, 1));
    }
    if first == 0xC0 && bytes.get(1) == Some(&0x80) {
        return Some(('\0', 2));
    }
    let len = match first {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(bytes.get(..len)?).ok()?;
    s.chars().next().map(|c| (c, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Vec<Parsed> {
        let mut s = QemuJsonStream::new();
        let mut out = Vec::new();
        s.feed(input, &mut out);
        out
    }

    fn errors(input: &[u8]) -> Vec<String> {
        run(input)
            .into_iter()
            .map(|p| match p {
                Parsed::Error(e) => e,
                Parsed::Value(v) => format!("value {v}"),
            })
            .collect()
    }

    /// Inputs and the `desc`s qemu-ga 7.2.22 answered (measured; see the module docs).
    #[test]
    fn lexical_and_parse_errors_match_qemu_ga() {
        let cases: &[(&[u8], &[&str])] = &[
            (b"\xff", &["JSON parse error, stray '\u{FFFD}'"]),
            (
                b"this is not json\n",
                &[
                    "JSON parse error, invalid keyword 'this'",
                    "JSON parse error, invalid keyword 'is'",
                    "JSON parse error, invalid keyword 'not'",
                    "JSON parse error, invalid keyword 'json'",
                ],
            ),
            (b"#foo bar\n", &["JSON parse error, stray '#'"]),
            (b"THIS\n", &["JSON parse error, stray 'T'"]),
            (
                b"abc1\n",
                &["JSON parse error, invalid keyword 'abc'", "value 1"],
            ),
            (b"}\n", &["JSON parse error, expecting value"]),
            (
                b"{\"execute\" \"x\"}\n",
                &["JSON parse error, missing : in object pair"],
            ),
            (
                b"{\"execute\":\"guest-p\xffing\"}",
                &[
                    "JSON parse error, stray '\"guest-p\u{FFFD}'",
                    "JSON parse error, expecting value",
                ],
            ),
            (b"\xfe\n", &["JSON parse error, stray '\u{FFFD}'"]),
            (b"\x01\n", &["JSON parse error, stray '\u{1}'"]),
            (b"%d\n", &["JSON parse error, stray '%'"]),
            (b"01\n", &["JSON parse error, stray '01'"]),
            (b"-\n1.\n", &["JSON parse error, stray '-\n'"]),
            (
                b"{1:2}\n",
                &["JSON parse error, key is not a string in object"],
            ),
            (b"{\"a\":}\n", &["JSON parse error, expecting value"]),
            (
                b"{\"a\":1 \"b\":2}\n",
                &["JSON parse error, expected separator in dict"],
            ),
            (b"{\"a\":1,}\n", &["JSON parse error, expecting value"]),
            (
                b"[1 2]\n",
                &["JSON parse error, expected separator in list"],
            ),
            (b"[1,]\n", &["JSON parse error, expecting value"]),
            (b"]\n", &["JSON parse error, expecting value"]),
            (b"{\"a\":1,\"a\":1}\n", &["JSON parse error, duplicate key"]),
            (
                b"{\"e\":\"g\\x\"}\n",
                &["JSON parse error, invalid escape sequence in string"],
            ),
            (
                b"{\"e\":\"g\\u00zz\"}\n",
                &["JSON parse error, \\u00zz is not a valid Unicode character"],
            ),
            (
                b"{\"e\":\"a\\ud83dxb\"}\n",
                &["JSON parse error, \\ud83d is not a valid Unicode character"],
            ),
            (
                b"{\"e\":\"a\\udc00b\"}\n",
                &["JSON parse error, \\udc00 is not a valid Unicode character"],
            ),
            (
                b"{\"e\":\"\xc3\"}\n",
                &["JSON parse error, invalid UTF-8 sequence in string"],
            ),
            (
                b"{\"e\":\"a\xed\xa0\x80b\"}\n",
                &["JSON parse error, invalid UTF-8 sequence in string"],
            ),
            (
                b"{\"e\":\"a\tb\"}\n",
                &[
                    "JSON parse error, stray '\"a\t'",
                    "JSON parse error, expecting value",
                ],
            ),
            (b"{\"id\":-}\n", &["JSON parse error, stray '-}'"]),
            (b"{\"id\":1.}\n", &["JSON parse error, stray '1.}'"]),
            (
                b"{\"id\":nul}\n",
                &["JSON parse error, invalid keyword 'nul'"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                errors(input),
                *want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn values_split_anywhere_decode_the_same() {
        let input: &[u8] = b"{\"execute\":\"a\\ud83d\\ude00\xc0\x80\xc3\xa9\",\"id\":[null,true,1.5e3,-0,18446744073709551615,-9223372036854775809]} 'x' {}";
        let whole = run(input);
        assert_eq!(
            whole,
            vec![
                Parsed::Value(serde_json::json!({
                    "execute": "a\u{1F600}\u{0}é",
                    "id": [null, true, 1500.0, 0, 18446744073709551615u64, -9223372036854775809.0]
                })),
                Parsed::Value(Value::String("x".into())),
                Parsed::Value(serde_json::json!({})),
            ]
        );
        for cut in 0..input.len() {
            let mut s = QemuJsonStream::new();
            let mut out = Vec::new();
            s.feed(&input[..cut], &mut out);
            s.feed(&input[cut..], &mut out);
            assert_eq!(out, whole, "cut at {cut}");
        }
    }

    #[test]
    fn an_open_message_waits_and_a_delimiter_flushes_it() {
        let mut s = QemuJsonStream::new();
        let mut out = Vec::new();
        s.feed(b"{\"execute\":", &mut out);
        assert!(out.is_empty() && !s.is_idle());
        s.feed(b"\xff{\"execute\":\"guest-ping\"}", &mut out);
        assert_eq!(
            out,
            vec![
                Parsed::Error("JSON parse error, stray '\u{FFFD}'".into()),
                Parsed::Value(serde_json::json!({"execute": "guest-ping"})),
            ]
        );
        assert!(s.is_idle());
    }

    #[test]
    fn nesting_limit_is_qemus() {
        let deep = vec![b'['; MAX_NESTING as usize + 1];
        let out = run(&deep);
        assert_eq!(
            out,
            vec![Parsed::Error("JSON nesting depth limit exceeded".into())]
        );
    }

    #[test]
    fn g17_of_parsed_floats() {
        use crate::wire::qga::encoder::format_g17;
        for (text, want) in [
            ("1.5e3", "1500"),
            ("1E2", "100"),
            ("0.1", "0.10000000000000001"),
            ("-2.5e-3", "-0.0025000000000000001"),
            ("1e20", "1e+20"),
            ("2.5", "2.5"),
        ] {
            let Value::Number(n) = float(text.as_bytes()) else {
                panic!("{text}")
            };
            assert_eq!(format_g17(n.as_f64().expect("f64")), want, "{text}");
        }
    }
}
