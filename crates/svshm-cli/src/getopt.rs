//! The option parsing of util-linux's C tools, for `svshm ipcrm` and `svshm
//! ipcmk`: glibc `getopt_long` (clustered short options, `--name=value`, unique
//! prefixes of long names, non-options moved to the end, `--`) and the C
//! number parsers those tools use, with the same messages, so that a script
//! sees what the util-linux tool would have said.

/// Whether a long option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    /// `no_argument`
    No,
    /// `required_argument`: `--name=value` or `--name value`
    Required,
    /// `optional_argument`: only `--name=value`
    Optional,
}

/// One entry of the long option table: its name, argument and short letter.
pub type LongOpt = (&'static str, HasArg, char);

/// One option's letter and argument, or the message for a bad option.
pub type Item = Result<(char, Option<String>), String>;

/// An iterator over options in command-line order, like successive calls of
/// `getopt_long`: each item is the option's letter and argument, or the
/// message glibc prints for a bad option (without the program name). The
/// non-options are collected in [`Getopt::rest`], in order.
#[derive(Debug)]
pub struct Getopt<'a> {
    args: Vec<String>,
    idx: usize,
    /// Within a cluster of short options: the byte position in `args[idx]`.
    pos: usize,
    shorts: &'a str,
    longs: &'a [LongOpt],
    /// The non-option arguments seen so far (all of them once exhausted).
    pub rest: Vec<String>,
}

impl<'a> Getopt<'a> {
    /// Options `shorts` in getopt's syntax (`"m:a::v"`) and the long table.
    pub fn new(args: Vec<String>, shorts: &'a str, longs: &'a [LongOpt]) -> Self {
        Getopt {
            args,
            idx: 0,
            pos: 0,
            shorts,
            longs,
            rest: Vec::new(),
        }
    }

    fn short_spec(&self, c: char) -> Option<HasArg> {
        for (i, ch) in self.shorts.char_indices() {
            if ch == ':' {
                continue;
            }
            if ch == c {
                let tail = &self.shorts[i + ch.len_utf8()..];
                return Some(if tail.starts_with("::") {
                    HasArg::Optional
                } else if tail.starts_with(':') {
                    HasArg::Required
                } else {
                    HasArg::No
                });
            }
        }
        None
    }

    fn short(&mut self) -> Result<(char, Option<String>), String> {
        let arg = &self.args[self.idx];
        let c = arg[self.pos..].chars().next().unwrap_or('?');
        self.pos += c.len_utf8();
        let tail = arg[self.pos..].to_string();
        let at_end = tail.is_empty();
        let spec = self.short_spec(c);
        let finish_word = |me: &mut Self| {
            me.idx += 1;
            me.pos = 0;
        };
        match spec {
            None => {
                if at_end {
                    finish_word(self);
                }
                Err(format!("invalid option -- '{c}'"))
            }
            Some(HasArg::No) => {
                if at_end {
                    finish_word(self);
                }
                Ok((c, None))
            }
            Some(HasArg::Optional) => {
                finish_word(self);
                Ok((c, (!at_end).then_some(tail)))
            }
            Some(HasArg::Required) => {
                finish_word(self);
                if !at_end {
                    Ok((c, Some(tail)))
                } else if let Some(next) = self.args.get(self.idx).cloned() {
                    self.idx += 1;
                    Ok((c, Some(next)))
                } else {
                    Err(format!("option requires an argument -- '{c}'"))
                }
            }
        }
    }

    fn long(&mut self) -> Result<(char, Option<String>), String> {
        let body = self.args[self.idx][2..].to_string();
        self.idx += 1;
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body.as_str(), None),
        };
        let found = match self.longs.iter().find(|o| o.0 == name) {
            Some(o) => *o,
            None => {
                let matches: Vec<&LongOpt> = self
                    .longs
                    .iter()
                    .filter(|o| o.0.starts_with(name))
                    .collect();
                match matches.as_slice() {
                    [] => return Err(format!("unrecognized option '--{body}'")),
                    [one] => **one,
                    many => {
                        let list: String = many.iter().map(|o| format!(" '--{}'", o.0)).collect();
                        return Err(format!(
                            "option '--{body}' is ambiguous; possibilities:{list}"
                        ));
                    }
                }
            }
        };
        let (full, has, c) = found;
        match (has, value) {
            (HasArg::No, Some(_)) => Err(format!("option '--{full}' doesn't allow an argument")),
            (HasArg::No, None) | (HasArg::Optional, None) => Ok((c, None)),
            (_, Some(v)) => Ok((c, Some(v))),
            (HasArg::Required, None) => match self.args.get(self.idx).cloned() {
                Some(next) => {
                    self.idx += 1;
                    Ok((c, Some(next)))
                }
                None => Err(format!("option '--{full}' requires an argument")),
            },
        }
    }
}

impl Iterator for Getopt<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos > 0 {
            return Some(self.short());
        }
        loop {
            let arg = self.args.get(self.idx)?;
            if arg == "--" {
                self.rest.extend(self.args.drain(self.idx + 1..));
                self.idx = self.args.len();
                return None;
            }
            if arg.starts_with("--") {
                return Some(self.long());
            }
            if arg.len() > 1 && arg.starts_with('-') {
                self.pos = 1;
                return Some(self.short());
            }
            self.rest.push(arg.clone());
            self.idx += 1;
        }
    }
}

/// C `strtoul(text, &end, base)` (base 0: `0x` hex, `0` octal, or decimal):
/// the value (negated modulo 2^64 after a `-`, as C does), the number of bytes
/// read (0 if no digits), and whether it overflowed (`ERANGE`; the value is
/// then `u64::MAX`).
pub fn strtoul(text: &str, base: u32) -> (u64, usize, bool) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let mut base = base;
    let hex_prefix = i + 2 < b.len()
        && b[i] == b'0'
        && (b[i + 1] | 0x20) == b'x'
        && b[i + 2].is_ascii_hexdigit();
    if (base == 0 || base == 16) && hex_prefix {
        base = 16;
        i += 2;
    } else if base == 0 {
        base = if b.get(i) == Some(&b'0') { 8 } else { 10 };
    }
    let start = i;
    let mut v: u64 = 0;
    let mut over = false;
    while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(base)) {
        match v
            .checked_mul(u64::from(base))
            .and_then(|x| x.checked_add(u64::from(d)))
        {
            Some(x) => v = x,
            None => over = true,
        }
        i += 1;
    }
    if i == start {
        return (0, 0, false);
    }
    if over {
        return (u64::MAX, i, true);
    }
    (if neg { v.wrapping_neg() } else { v }, i, false)
}

/// Why util-linux's `strtosize` refused a size: `EINVAL` or `ERANGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeError {
    /// Not a size ("Invalid argument").
    Invalid,
    /// Too large ("Numerical result out of range").
    Range,
}

impl SizeError {
    /// The `strerror` text util-linux appends.
    pub fn text(self) -> &'static str {
        match self {
            SizeError::Invalid => "Invalid argument",
            SizeError::Range => "Numerical result out of range",
        }
    }
}

/// util-linux `strtosize` (lib/strutils.c `parse_size`, C locale): a C
/// integer of any base, an optional fraction, then an optional suffix K M G T
/// P E Z Y (either case), alone or with `iB` (powers of 1024) or with `B`
/// (powers of 1000). `1.5K` is 1536; fractions are added digit by digit,
/// rounded down, like util-linux.
pub fn strtosize(text: &str) -> Result<u64, SizeError> {
    use SizeError::*;
    if text.is_empty()
        || text
            .trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
            .starts_with('-')
    {
        return Err(Invalid);
    }
    let b = text.as_bytes();
    let (mut x, end, over) = strtoul(text, 0);
    if end == 0 {
        return Err(Invalid);
    }
    if over {
        return Err(Range);
    }
    if end == b.len() {
        return Ok(x);
    }
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut p = end;
    let mut frac: u64 = 0;
    let mut frac_zeros = 0u32;
    let base: u64 = loop {
        // A fraction that ends the text: C reads past its end here, and finds
        // the next argument's bytes, an unexpected suffix.
        if p >= b.len() {
            return Err(Invalid);
        }
        if at(p + 1) == b'i' && matches!(at(p + 2), b'B' | b'b') && at(p + 3) == 0 {
            break 1024;
        }
        if matches!(at(p + 1), b'B' | b'b') && at(p + 2) == 0 {
            break 1000;
        }
        if at(p + 1) != 0 {
            if frac == 0 && at(p) == b'.' {
                p += 1;
                while at(p) == b'0' {
                    frac_zeros += 1;
                    p += 1;
                }
                if at(p).is_ascii_digit() {
                    let (f, n, over) = strtoul(&text[p..], 0);
                    if n == 0 || over {
                        return Err(if over { Range } else { Invalid });
                    }
                    frac = f;
                    p += n;
                    if frac != 0 && p == b.len() {
                        return Err(Invalid);
                    }
                }
                continue;
            }
            return Err(Invalid);
        }
        break 1024;
    };
    let pwr = match b"KMGTPEZY"
        .iter()
        .position(|&s| s == at(p).to_ascii_uppercase())
    {
        Some(i) => i as u32 + 1,
        None => return Err(Invalid),
    };
    let scale = |v: &mut u64| -> bool {
        for _ in 0..pwr {
            match v.checked_mul(base) {
                Some(n) => *v = n,
                None => return false,
            }
        }
        true
    };
    let scaled = scale(&mut x);
    if frac != 0 {
        let mut frac_base: u64 = 1;
        scale(&mut frac_base);
        let mut frac_div: u64 = 10;
        while frac_div < frac {
            if frac_div <= u64::MAX / 10 {
                frac_div *= 10;
            } else {
                frac /= 10;
            }
        }
        for _ in 0..frac_zeros {
            if frac_div <= u64::MAX / 10 {
                frac_div *= 10;
            } else {
                frac /= 10;
            }
        }
        let mut frac_poz: u64 = 1;
        loop {
            let seg = frac % 10;
            let seg_div = frac_div / frac_poz;
            frac /= 10;
            frac_poz = frac_poz.saturating_mul(10);
            if seg != 0 && seg_div / seg != 0 {
                x = x.wrapping_add(frac_base / (seg_div / seg));
            }
            if frac == 0 {
                break;
            }
        }
    }
    if !scaled {
        return Err(Range);
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONGS: &[LongOpt] = &[
        ("shmem-id", HasArg::Required, 'm'),
        ("shmem-key", HasArg::Required, 'M'),
        ("all", HasArg::Optional, 'a'),
        ("verbose", HasArg::No, 'v'),
    ];

    fn parse(args: &[&str]) -> (Vec<Item>, Vec<String>) {
        let mut g = Getopt::new(
            args.iter().map(|s| s.to_string()).collect(),
            "m:M:a::v",
            LONGS,
        );
        let items: Vec<_> = g.by_ref().collect();
        (items, g.rest)
    }

    #[test]
    fn getopt_like_glibc() {
        let (items, rest) = parse(&[
            "-vm5",
            "x",
            "--shmem-k=0x1",
            "-a",
            "-ashm",
            "--all=msg",
            "--",
            "-m",
        ]);
        assert_eq!(
            items,
            vec![
                Ok(('v', None)),
                Ok(('m', Some("5".into()))),
                Ok(('M', Some("0x1".into()))),
                Ok(('a', None)),
                Ok(('a', Some("shm".into()))),
                Ok(('a', Some("msg".into()))),
            ]
        );
        assert_eq!(rest, ["x", "-m"]);
        assert_eq!(
            parse(&["-m"]).0,
            [Err("option requires an argument -- 'm'".into())]
        );
        assert_eq!(parse(&["-x"]).0, [Err("invalid option -- 'x'".into())]);
        assert_eq!(
            parse(&["--sh=1"]).0[0].as_ref().unwrap_err(),
            "option '--sh=1' is ambiguous; possibilities: '--shmem-id' '--shmem-key'"
        );
        assert_eq!(
            parse(&["--verbose=1"]).0,
            [Err("option '--verbose' doesn't allow an argument".into())]
        );
        assert_eq!(
            parse(&["--shmem-id"]).0,
            [Err("option '--shmem-id' requires an argument".into())]
        );
        assert_eq!(parse(&["-m", "-1"]).0, [Ok(('m', Some("-1".into())))]);
    }

    #[test]
    fn strtoul_like_c() {
        assert_eq!(strtoul("0x1f", 0), (31, 4, false));
        assert_eq!(strtoul("0x", 0), (0, 1, false));
        assert_eq!(strtoul("010", 0), (8, 3, false));
        assert_eq!(strtoul(" -1", 0), (u64::MAX, 3, false));
        assert_eq!(strtoul("abc", 0), (0, 0, false));
        assert!(strtoul("99999999999999999999999", 10).2);
    }

    #[test]
    fn sizes_like_strtosize() {
        for (t, v) in [
            ("4096", 4096),
            ("1.5K", 1536),
            ("1.05K", 1075),
            ("1KB", 1000),
            ("1kib", 1024),
            ("1.K", 1024),
            ("1.00K", 1024),
            ("010", 8),
            ("0x100", 256),
            (" 4096", 4096),
            ("1.5kb", 1500),
            ("1E", 1 << 60),
        ] {
            assert_eq!(strtosize(t), Ok(v), "{t}");
        }
        for (t, e) in [
            ("", SizeError::Invalid),
            ("abc", SizeError::Invalid),
            ("4096 ", SizeError::Invalid),
            ("1.5", SizeError::Invalid),
            ("1.00", SizeError::Invalid),
            ("-5", SizeError::Invalid),
            ("1iB", SizeError::Invalid),
            ("1B", SizeError::Invalid),
            ("08", SizeError::Invalid),
            (".5K", SizeError::Invalid),
            ("1Y", SizeError::Range),
            ("16E", SizeError::Range),
            ("18446744073709551616", SizeError::Range),
        ] {
            assert_eq!(strtosize(t), Err(e), "{t}");
        }
    }
}
