//! The libsmartcols-compatible output of `svshm lsipc`: pretty (`-i`),
//! JSON, raw, export, and the column-width algorithm of the human table.

use super::*;

/// `printf("%s:%*c%-36s\n", name, 35 - strlen(name), ' ', value)` for every
/// column of the first row that has data.
///
/// Departure: lsipc prints the value raw, so a creator's command line full of
/// terminal escapes or newlines would reach the terminal as they are; here its
/// control characters are escaped as `\xNN` like the table's cells are.
pub(super) fn print_pretty(out: &mut dyn Write, t: &Table) -> Result<()> {
    let Some(row) = t.rows.first() else {
        return Ok(());
    };
    for (&col, cell) in t.cols.iter().zip(row) {
        if let Some(v) = cell {
            let name = COLS[col].pretty;
            let pad = 35usize.saturating_sub(name.len()).max(1);
            let v = crate::util::printable(v);
            writeln!(out, "{name}:{:>pad$}{v:<36}", ' ')?;
        }
    }
    Ok(())
}

/// Whether libc's `isprint()` holds for this byte in the C locale.
pub(super) fn c_isprint(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

/// carefulputc.h `fputs_nonblank` (raw format): blanks, backslashes and
/// non-printable bytes as `\xNN`.
pub(super) fn nonblank(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b == b' ' || b == b'\t' || b == b'\\' || !c_isprint(b) {
            o.push_str(&format!("\\x{b:02x}"));
        } else {
            o.push(b as char);
        }
    }
    o
}

/// carefulputc.h `fputs_quoted` (export format).
pub(super) fn quoted(s: &str) -> String {
    let mut o = String::from("\"");
    for &b in s.as_bytes() {
        if matches!(b, b'"' | b'\\' | b'`' | b'$') || !c_isprint(b) {
            o.push_str(&format!("\\x{b:02x}"));
        } else {
            o.push(b as char);
        }
    }
    o.push('"');
    o
}

/// carefulputc.h `fputs_quoted_json` (optionally lowercased, for keys).
pub(super) fn json_quoted(s: &str, lower: bool) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' | '\\' => {
                o.push('\\');
                o.push(ch);
            }
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) <= 0x1f => o.push_str(&format!("\\u{:04x}", c as u32)),
            c if lower => o.push(c.to_ascii_lowercase()),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

pub(super) fn print_raw(out: &mut dyn Write, t: &Table, ctl: &Ctl) -> Result<()> {
    if t.rows.is_empty() {
        return Ok(());
    }
    if !ctl.noheadings {
        let names: Vec<String> = t
            .cols
            .iter()
            .map(|&c| nonblank(&header_name(c, ctl)))
            .collect();
        writeln!(out, "{}", names.join(" "))?;
    }
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| nonblank(c.as_deref().unwrap_or("")))
            .collect();
        writeln!(out, "{}", cells.join(" "))?;
    }
    Ok(())
}

pub(super) fn print_export(out: &mut dyn Write, t: &Table, ctl: &Ctl, sep: &str) -> Result<()> {
    for row in &t.rows {
        let cells: Vec<String> = t
            .cols
            .iter()
            .zip(row)
            .map(|(&c, v)| {
                format!(
                    "{}={}",
                    header_name(c, ctl),
                    quoted(v.as_deref().unwrap_or(""))
                )
            })
            .collect();
        writeln!(out, "{}", cells.join(sep))?;
    }
    Ok(())
}

pub(super) fn print_json(out: &mut dyn Write, t: &Table, ctl: &Ctl) -> Result<()> {
    let name = json_quoted(t.name.unwrap_or(""), true);
    write!(out, "{{\n   {name}: [\n")?;
    if t.rows.is_empty() {
        writeln!(out)?;
    }
    for (i, row) in t.rows.iter().enumerate() {
        out.write_all(if i == 0 { b"      {\n" } else { b"      },{\n" })?;
        for (j, (&c, v)) in t.cols.iter().zip(row).enumerate() {
            let key = json_quoted(&header_name(c, ctl), true);
            let val = match v.as_deref() {
                None | Some("") => "null".to_string(),
                Some(s) => json_quoted(s, false),
            };
            let comma = if j + 1 < t.cols.len() { "," } else { "" };
            writeln!(out, "         {key}: {val}{comma}")?;
        }
        if i + 1 == t.rows.len() {
            writeln!(out, "      }}")?;
        }
    }
    write!(out, "   ]\n}}\n")?;
    Ok(())
}

pub(super) fn utf8_locale() -> bool {
    let v = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    v.contains("utf-8") || v.contains("utf8")
}

/// The width libsmartcols gives a terminal: TIOCGWINSZ on stdout, then
/// `$COLUMNS`, then 80.
pub(crate) fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|&c| c > 0)
        .or_else(|| {
            std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse::<usize>().ok())
                .filter(|&c| c > 0 && c <= i32::MAX as usize)
        })
        .unwrap_or(80)
}

/// The width of one column (libsmartcols `struct libscols_column`).
#[derive(Clone, Default)]
pub(super) struct Width {
    pub(super) width: usize,
    min: usize,
    max: usize,
    avg: usize,
    extreme: bool,
}

/// libsmartcols `count_column_width`.
pub(super) fn count_width(w: &mut Width, header_len: usize, cells: &[usize], noextremes: bool) {
    w.width = 0;
    if w.min == 0 {
        w.min = header_len.max(1);
    }
    let (mut sum, mut count) = (0usize, 0usize);
    for &len in cells {
        w.max = w.max.max(len);
        if w.extreme && w.avg > 0 && len > w.avg * 2 {
            continue;
        } else if noextremes {
            sum += len;
            count += 1;
        }
        w.width = w.width.max(len);
    }
    if count > 0 && w.avg == 0 {
        w.avg = sum / count;
        if w.avg > 0 && w.max > w.avg * 2 {
            w.extreme = true;
        }
    }
    // (The absolute width hint of 1 never matters: every header is longer.)
    w.width = w.width.max(w.min);
}

/// libsmartcols `__scols_calculate` for a table without tree, maxout or
/// relative width hints, as lsipc builds it.
pub(super) fn calculate(
    widths: &mut [Width],
    lens: &[Vec<usize>],
    cols: &[usize],
    ctl: &Ctl,
    term: usize,
) {
    let n = widths.len();
    let mut width = 0;
    let mut extremes = 0;
    for (i, w) in widths.iter_mut().enumerate() {
        count_width(
            w,
            COLS[cols[i]].name.len(),
            &lens[i],
            is_noextremes(cols[i]),
        );
        width += w.width + usize::from(i + 1 < n);
        extremes += usize::from(w.extreme);
    }
    // Reduce columns with extreme fields.
    if width > term && extremes > 0 {
        for (i, w) in widths.iter_mut().enumerate() {
            if !w.extreme {
                continue;
            }
            let org = w.width;
            count_width(
                w,
                COLS[cols[i]].name.len(),
                &lens[i],
                is_noextremes(cols[i]),
            );
            if org > w.width {
                width -= org - w.width;
            } else {
                extremes -= 1;
            }
        }
    }
    if width < term {
        if extremes > 0 {
            for w in widths.iter_mut() {
                if !w.extreme {
                    continue;
                }
                let mut add = term - width;
                if add > 0 && w.width + add > w.max {
                    add = w.max.saturating_sub(w.width);
                }
                w.width += add;
                width += add;
                if width == term {
                    break;
                }
            }
        }
        // Enlarge the last column (it is not padded, so this shows only in
        // where a too-long cell wraps).
        if width < term && !COLS[cols[n - 1]].right {
            widths[n - 1].width += term - width;
            width = term;
        }
    }
    // Truncate the TRUNC columns (COMMAND), one cell at a time, round robin;
    // the other stages need relative width hints, which lsipc does not use.
    while width > term {
        let org = width;
        for (i, w) in widths.iter_mut().enumerate() {
            if width <= term {
                break;
            }
            if w.width == w.min || w.width == 0 || !is_trunc(cols[i], ctl) {
                continue;
            }
            w.width -= 1;
            width -= 1;
        }
        if org == width {
            break;
        }
    }
}

pub(super) fn print_human(out: &mut dyn Write, t: &Table, ctl: &Ctl) -> Result<()> {
    if t.rows.is_empty() {
        return Ok(());
    }
    let utf8 = utf8_locale();
    let n = t.cols.len();
    let cells: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::util::safe_encode(c.as_deref().unwrap_or(""), utf8))
                .collect()
        })
        .collect();
    let lens: Vec<Vec<usize>> = (0..n)
        .map(|i| cells.iter().map(|r| r[i].chars().count()).collect())
        .collect();
    let mut widths = vec![Width::default(); n];
    if std::io::stdout().is_terminal() {
        calculate(&mut widths, &lens, &t.cols, ctl, terminal_width());
    } else {
        for (i, w) in widths.iter_mut().enumerate() {
            let col = t.cols[i];
            count_width(w, COLS[col].name.len(), &lens[i], is_noextremes(col));
        }
    }
    let mut line = String::new();
    if !ctl.noheadings {
        for (i, &c) in t.cols.iter().enumerate() {
            let name = crate::util::safe_encode(&header_name(c, ctl), utf8);
            print_cell(&mut line, &name, i, &t.cols, &widths, ctl);
        }
        line.push('\n');
    }
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            print_cell(&mut line, cell, i, &t.cols, &widths, ctl);
        }
        line.push('\n');
    }
    out.write_all(line.as_bytes())?;
    Ok(())
}

/// libsmartcols `print_data` for the human format.
pub(super) fn print_cell(
    o: &mut String,
    data: &str,
    i: usize,
    cols: &[usize],
    widths: &[Width],
    ctl: &Ctl,
) {
    let col = cols[i];
    let right = COLS[col].right;
    let last = i + 1 == cols.len();
    let mut width = widths[i].width;
    let mut len = data.chars().count();
    let mut data = data;
    if last && len < width && !right {
        width = len;
    }
    if len > width && is_trunc(col, ctl) {
        let cut = data
            .char_indices()
            .nth(width)
            .map_or(data.len(), |(b, _)| b);
        data = &data[..cut];
        len = width;
    }
    if !data.is_empty() {
        if right {
            o.extend(std::iter::repeat_n(' ', width.saturating_sub(len)));
            len = width;
        }
        o.push_str(data);
    }
    if last {
        return;
    }
    o.extend(std::iter::repeat_n(' ', width.saturating_sub(len)));
    if len > width && !is_trunc(col, ctl) {
        // The next column starts on the next line, below its place.
        o.push('\n');
        for (j, w) in widths.iter().enumerate().take(i + 1) {
            o.extend(std::iter::repeat_n(' ', w.width));
            if j + 1 < cols.len() {
                o.push(' ');
            }
        }
    } else {
        o.push(' ');
    }
}
