//! The full-screen view: terminal setup and restoration, the event loop, and
//! drawing. Every text cell from a segment or /proc goes through
//! [`printable`], so no name or command line can drive the terminal.

use super::model::{ChanRow, Sampler, SegRow, Snapshot, View, fill_bar, rate_text, sparkline};
use crate::util::{human_1letter, printable, status_words};
use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, Wrap};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest the loop sleeps before looking at signals and the clock again.
const TICK: Duration = Duration::from_millis(200);

/// The help screen (`?`).
const HELP: &str = "\
svshm top: every segment of the host, and your own channels.

Keys
  q, Esc, Ctrl-C   quit
  s                cycle the segment sort: size, rss, nattch, id
  /                filter: type text, Enter applies, Esc clears
  Up Down PgUp PgDn Home End   scroll the focused table (j, k too)
  Tab              focus the other table
  r                refresh now
  ?                this help (any key closes it)

Channels are yours only: segments owned and created by your uid and sized
like a channel. Each refresh attaches them read-only for a moment to read
the channel header (name, fill, cursors); that changes their last attach
pid and time, nothing else. Other users' segments are never attached, and
no data is read. (--no-attach: nothing is attached.)

BYTES/S is how far the writer's cursor moved since the last refresh; the
sparkline is its recent history. Messages per second are not shown: the
cursors count bytes, not messages.

Segments come from /proc/sysvipc/shm; SIZE and RSS are in bytes (K, M, G).";

/// Whether the terminal is in raw mode and on the alternate screen (so that
/// [`restore`] undoes it once: leaving the alternate screen twice would move
/// the cursor back over whatever was printed in between, a panic message say).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was: raw mode off, the alternate screen left,
/// the cursor shown. Does nothing if that is done already.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    }
}

/// Raw mode and the alternate screen while it lives; [`restore`] on drop,
/// whether the view ends normally, by an error or by a panic.
struct TermGuard;

impl TermGuard {
    fn enter() -> Result<TermGuard> {
        terminal::enable_raw_mode().context("switch the terminal to raw mode")?;
        // From here on, dropping the guard undoes whatever was done.
        ACTIVE.store(true, Ordering::SeqCst);
        let guard = TermGuard;
        execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)
            .context("switch to the terminal's alternate screen")?;
        Ok(guard)
    }
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Restores the terminal before the panic message is printed, so the message
/// lands on the normal screen and the shell is usable afterwards.
fn restore_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Which table the scroll keys move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    Channels,
    Segments,
}

/// What the keys do at the moment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Typing a filter (the text so far).
    Filter(String),
    Help,
}

/// What a key asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    None,
    Quit,
    Refresh,
}

struct App {
    view: View,
    snap: Snapshot,
    mode: Mode,
    focus: Focus,
    /// First row shown of each table (channels, segments).
    scroll: [usize; 2],
    /// Rows that fit in each table at the last draw (for PageUp/PageDown).
    page: [usize; 2],
    /// The last refresh's error, shown until one succeeds.
    error: Option<String>,
    interval: Option<Duration>,
}

impl App {
    fn focus_index(&self) -> usize {
        match self.focus {
            Focus::Channels => 0,
            Focus::Segments => 1,
        }
    }

    fn key(&mut self, k: KeyEvent) -> Action {
        if k.modifiers.contains(KeyModifiers::CONTROL) && matches!(k.code, KeyCode::Char('c' | 'C'))
        {
            return Action::Quit;
        }
        match &mut self.mode {
            Mode::Help => {
                self.mode = Mode::Normal;
                Action::None
            }
            Mode::Filter(text) => {
                match k.code {
                    KeyCode::Enter => {
                        self.view.filter = std::mem::take(text);
                        self.mode = Mode::Normal;
                        self.scroll = [0, 0];
                    }
                    KeyCode::Esc => {
                        self.view.filter.clear();
                        self.mode = Mode::Normal;
                        self.scroll = [0, 0];
                    }
                    KeyCode::Backspace => {
                        text.pop();
                    }
                    KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                        text.push(c);
                    }
                    _ => {}
                }
                Action::None
            }
            Mode::Normal => {
                let f = self.focus_index();
                let page = self.page[f].max(1);
                match k.code {
                    KeyCode::Char('q' | 'Q') | KeyCode::Esc => return Action::Quit,
                    KeyCode::Char('s') => {
                        self.view.sort = self.view.sort.next();
                        self.scroll[1] = 0;
                    }
                    KeyCode::Char('/') => self.mode = Mode::Filter(String::new()),
                    KeyCode::Char('?') => self.mode = Mode::Help,
                    KeyCode::Char('r') => return Action::Refresh,
                    KeyCode::Tab | KeyCode::BackTab => {
                        self.focus = match self.focus {
                            Focus::Channels => Focus::Segments,
                            Focus::Segments => Focus::Channels,
                        }
                    }
                    KeyCode::Up | KeyCode::Char('k') => {
                        self.scroll[f] = self.scroll[f].saturating_sub(1)
                    }
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.scroll[f] = self.scroll[f].saturating_add(1)
                    }
                    KeyCode::PageUp => self.scroll[f] = self.scroll[f].saturating_sub(page),
                    KeyCode::PageDown => self.scroll[f] = self.scroll[f].saturating_add(page),
                    KeyCode::Home => self.scroll[f] = 0,
                    KeyCode::End => self.scroll[f] = usize::MAX,
                    _ => {}
                }
                Action::None
            }
        }
    }
}

/// Runs the live view until `q`, Esc or Ctrl-C (then returns), or until
/// SIGINT, SIGTERM or SIGHUP (then exits 128 + the signal, as the signal
/// would have, after restoring the terminal). `interval` `None` refreshes
/// only on `r`.
pub fn run(sampler: Sampler, view: View, interval: Option<Duration>) -> Result<()> {
    let signal = Arc::new(AtomicUsize::new(0));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize)
            .context("set up the signal handlers that restore the terminal")?;
    }
    restore_on_panic();
    let guard = TermGuard::enter()?;
    let result = live(sampler, view, interval, &signal);
    drop(guard);
    match signal.load(Ordering::Relaxed) {
        0 => result,
        sig => std::process::exit(128 + sig as i32),
    }
}

/// The event loop, on a terminal already in raw mode and the alternate screen.
fn live(
    mut sampler: Sampler,
    view: View,
    interval: Option<Duration>,
    signal: &AtomicUsize,
) -> Result<()> {
    let mut term = Terminal::new(CrosstermBackend::new(io::stdout()))
        .context("set up drawing on the terminal")?;
    term.clear().context("clear the terminal")?;
    let mut app = App {
        view,
        snap: sampler.sample()?,
        mode: Mode::Normal,
        focus: Focus::Segments,
        scroll: [0, 0],
        page: [1, 1],
        error: None,
        interval,
    };
    let mut next = interval.map(|d| Instant::now() + d);
    loop {
        term.draw(|f| draw(f, &mut app))
            .context("draw on the terminal")?;
        // Lets the tests see that a panic restores the terminal (debug builds only).
        if cfg!(debug_assertions) && std::env::var_os("SVSHM_TOP_TEST_PANIC").is_some() {
            panic!("SVSHM_TOP_TEST_PANIC is set");
        }
        if signal.load(Ordering::Relaxed) != 0 {
            return Ok(());
        }
        let wait = next.map_or(TICK, |n| {
            n.saturating_duration_since(Instant::now()).min(TICK)
        });
        let mut refresh = false;
        match wait_for_input(wait)? {
            Input::HungUp => {
                // Nobody can see the view any more: end as SIGHUP would.
                signal.store(signal_hook::consts::SIGHUP as usize, Ordering::Relaxed);
                return Ok(());
            }
            Input::None => {}
            Input::Ready => {
                // Only what is already there: never block in crossterm.
                while event::poll(Duration::ZERO).context("read the keyboard")? {
                    if let Event::Key(k) = event::read().context("read the keyboard")?
                        && k.kind == KeyEventKind::Press
                    {
                        match app.key(k) {
                            Action::Quit => return Ok(()),
                            Action::Refresh => refresh = true,
                            Action::None => {}
                        }
                    }
                }
            }
        }
        if refresh || next.is_some_and(|n| Instant::now() >= n) {
            match sampler.sample() {
                Ok(s) => {
                    app.snap = s;
                    app.error = None;
                }
                Err(e) => app.error = Some(format!("{e:#}")),
            }
            next = interval.map(|d| Instant::now() + d);
        }
    }
}

/// What the terminal has for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    None,
    Ready,
    /// The terminal is gone (its emulator closed, the ssh session ended).
    HungUp,
}

/// Waits up to `wait` for input on stdin (the terminal). crossterm is asked
/// for events only once this says there is input: on a hung-up terminal its
/// reader retries a failing read forever, inside its own poll, and would spin
/// a core without ever returning to see a signal.
fn wait_for_input(wait: Duration) -> Result<Input> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let stdin = io::stdin();
    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
    let timeout = Timespec::try_from(wait).unwrap_or(Timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    });
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(0) => Ok(Input::None),
        Ok(_) => {
            let r = fds[0].revents();
            if r.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                Ok(Input::HungUp)
            } else {
                Ok(Input::Ready)
            }
        }
        Err(rustix::io::Errno::INTR) => Ok(Input::None),
        Err(e) => Err(io::Error::from(e)).context("wait for the keyboard"),
    }
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

fn border(focused: bool) -> Style {
    if focused {
        Style::default().fg(Color::Cyan)
    } else {
        Style::default()
    }
}

/// Clamps a table's scroll to its rows and records how many fit.
fn window(
    scroll: &mut usize,
    page: &mut usize,
    rows: usize,
    height: u16,
) -> std::ops::Range<usize> {
    // Borders (2) and the header row (1).
    let fit = usize::from(height.saturating_sub(3)).max(1);
    *page = fit;
    let first = (*scroll).min(rows.saturating_sub(fit));
    *scroll = first;
    first..(first + fit).min(rows)
}

fn draw(f: &mut ratatui::Frame, app: &mut App) {
    let area = f.area();
    let nchan = app.view.chans(&app.snap).len();
    let chan_h = (nchan as u16 + 3).clamp(4, (area.height * 2 / 5).max(4));
    let [head, chans, segs, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(chan_h),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    let every = match app.interval {
        Some(d) => format!("every {:.1} s", d.as_secs_f64()),
        None => "on r".to_string(),
    };
    let clock = chrono::Local::now().format("%H:%M:%S");
    f.render_widget(
        Paragraph::new(vec![
            Line::styled(
                format!("svshm top  {clock}  refresh {every}  (? help, q quit)"),
                bold(),
            ),
            Line::raw(super::summary(&app.snap, &app.view)),
        ]),
        head,
    );
    draw_channels(f, app, chans);
    draw_segments(f, app, segs);
    let footer = match (&app.mode, &app.error) {
        (Mode::Filter(t), _) => format!("filter: {}_   (Enter apply, Esc clear)", printable(t)),
        (_, Some(e)) => format!("refresh failed: {}", printable(e)),
        _ => "q quit  s sort  / filter  Up/Down/PgUp/PgDn scroll  Tab switch table  r refresh  ? help".to_string(),
    };
    f.render_widget(
        Paragraph::new(footer).style(Style::default().add_modifier(Modifier::REVERSED)),
        foot,
    );
    if app.mode == Mode::Help {
        let w = area.width.min(80);
        let h = area.height.min(28);
        let pop = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        f.render_widget(Clear, pop);
        f.render_widget(
            Paragraph::new(HELP)
                .wrap(Wrap { trim: false })
                .block(Block::bordered().title(" Help (any key closes) ")),
            pop,
        );
    }
}

fn chan_cells(c: &ChanRow) -> Row<'static> {
    Row::new(vec![
        Cell::from(c.status.id.to_string()),
        Cell::from(printable(c.name())),
        Cell::from(c.status.state()),
        Cell::from(fill_bar(c.fill_percent(), 8)),
        Cell::from(rate_text(c.rate)),
        Cell::from(c.writer()),
        Cell::from(c.reader()),
        Cell::from(sparkline(&c.history, 16)),
    ])
}

fn draw_channels(f: &mut ratatui::Frame, app: &mut App, area: Rect) {
    let focused = app.focus == Focus::Channels;
    if !app.snap.peeked {
        f.render_widget(
            Paragraph::new("not read (--no-attach): nothing is attached").block(
                Block::bordered()
                    .title(" Your channels ")
                    .border_style(border(focused)),
            ),
            area,
        );
        return;
    }
    let chans = app.view.chans(&app.snap);
    let total = app.snap.chans.len();
    let shown = chans.len();
    let range = window(&mut app.scroll[0], &mut app.page[0], shown, area.height);
    let rows: Vec<Row> = chans[range.clone()].iter().map(|c| chan_cells(c)).collect();
    let title = format!(
        " Your channels: {shown} of {total}{} ",
        rows_note(&range, shown)
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(7),
            Constraint::Fill(1),
            Constraint::Length(12),
            Constraint::Length(13),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Length(16),
        ],
    )
    .header(
        Row::new([
            "ID",
            "NAME",
            "STATE",
            "FILL",
            "BYTES/S",
            "WRITER",
            "READER",
            "THROUGHPUT",
        ])
        .style(bold()),
    )
    .block(Block::bordered().title(title).border_style(border(focused)));
    f.render_widget(table, area);
}

/// ` (rows 3-20)` when the table is scrolled or cut.
fn rows_note(range: &std::ops::Range<usize>, total: usize) -> String {
    if range.start == 0 && range.end >= total {
        String::new()
    } else {
        format!(", rows {}-{}", range.start + 1, range.end)
    }
}

fn seg_cells(s: &SegRow) -> Row<'static> {
    let i = &s.info;
    Row::new(vec![
        Cell::from(i.key.to_string()),
        Cell::from(i.id.to_string()),
        Cell::from(printable(&s.owner)),
        Cell::from(human_1letter(i.size)),
        Cell::from(i.rss.map(human_1letter).unwrap_or_default()),
        Cell::from(i.attach_count.to_string()),
        Cell::from(status_words(i).join(",")),
        Cell::from(i.creator_pid.to_string()),
        Cell::from(i.last_pid.to_string()),
        Cell::from(printable(&s.channel)),
        Cell::from(printable(&s.command)),
    ])
}

fn draw_segments(f: &mut ratatui::Frame, app: &mut App, area: Rect) {
    let focused = app.focus == Focus::Segments;
    let segs = app.view.segs(&app.snap);
    let total = app.snap.segs.len();
    let shown = segs.len();
    let range = window(&mut app.scroll[1], &mut app.page[1], shown, area.height);
    let rows: Vec<Row> = segs[range.clone()].iter().map(|s| seg_cells(s)).collect();
    let sort = app.view.sort;
    let mark = |name: &'static str, key: super::model::SortKey| -> String {
        if sort == key {
            format!("{name}▼")
        } else {
            name.to_string()
        }
    };
    use super::model::SortKey as K;
    let header = Row::new(vec![
        "KEY".to_string(),
        mark("ID", K::Id),
        "OWNER".to_string(),
        mark("SIZE", K::Size),
        mark("RSS", K::Rss),
        mark("NATTCH", K::Nattch),
        "STATUS".to_string(),
        "CPID".to_string(),
        "LPID".to_string(),
        "CHANNEL".to_string(),
        "COMMAND".to_string(),
    ])
    .style(bold());
    let title = format!(
        " Segments: {shown} of {total}, sort: {}{} ",
        sort.name(),
        rows_note(&range, shown)
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(11),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Fill(1),
            Constraint::Fill(2),
        ],
    )
    .header(header)
    .block(Block::bordered().title(title).border_style(border(focused)));
    f.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use super::super::model::SortKey;
    use super::*;
    use ratatui::backend::TestBackend;

    fn press(app: &mut App, code: KeyCode) -> Action {
        app.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn app(segs: Vec<SegRow>) -> App {
        App {
            view: View::default(),
            snap: Snapshot {
                segs,
                chans: Vec::new(),
                over: None,
                peeked: true,
            },
            mode: Mode::Normal,
            focus: Focus::Segments,
            scroll: [0, 0],
            page: [1, 1],
            error: None,
            interval: Some(Duration::from_secs(1)),
        }
    }

    fn seg(id: i32, size: u64, command: &str) -> SegRow {
        let line = format!("0 {id} 600 {size} 1 1 0 0 0 0 0 0 0 0 {size} 0");
        SegRow {
            info: svshm::SegmentInfo::parse_proc_line(&line).unwrap(),
            owner: "root".into(),
            channel: String::new(),
            command: command.into(),
        }
    }

    fn screen(app: &mut App) -> String {
        let mut term = Terminal::new(TestBackend::new(120, 30)).unwrap();
        term.draw(|f| draw(f, app)).unwrap();
        let buf = term.backend().buffer();
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }

    #[test]
    fn keys_sort_filter_help_and_quit() {
        let mut a = app(Vec::new());
        assert_eq!(press(&mut a, KeyCode::Char('s')), Action::None);
        assert_eq!(a.view.sort, SortKey::Rss);
        press(&mut a, KeyCode::Char('/'));
        for c in "ab".chars() {
            press(&mut a, KeyCode::Char(c));
        }
        // Typing q or s in the filter is text, not a command.
        assert_eq!(press(&mut a, KeyCode::Char('q')), Action::None);
        press(&mut a, KeyCode::Backspace);
        assert_eq!(a.view.filter, "", "applied only on Enter");
        press(&mut a, KeyCode::Enter);
        assert_eq!(a.view.filter, "ab");
        press(&mut a, KeyCode::Char('/'));
        press(&mut a, KeyCode::Char('x'));
        assert_eq!(press(&mut a, KeyCode::Esc), Action::None);
        assert_eq!(a.view.filter, "", "Esc clears the filter");
        press(&mut a, KeyCode::Char('?'));
        assert_eq!(a.mode, Mode::Help);
        assert_eq!(press(&mut a, KeyCode::Char('q')), Action::None);
        assert_eq!(a.mode, Mode::Normal);
        assert_eq!(press(&mut a, KeyCode::Char('r')), Action::Refresh);
        assert_eq!(press(&mut a, KeyCode::Esc), Action::Quit);
        assert_eq!(
            a.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Action::Quit
        );
    }

    #[test]
    fn scrolling_stays_within_the_rows() {
        let mut a = app((0..100).map(|i| seg(i, 4096, "")).collect());
        screen(&mut a);
        press(&mut a, KeyCode::End);
        let s = screen(&mut a);
        assert!(s.contains("rows "), "{s}");
        let last = a.scroll[1];
        assert!(last > 0 && last + a.page[1] == 100, "{last} {}", a.page[1]);
        press(&mut a, KeyCode::PageDown);
        screen(&mut a);
        assert_eq!(a.scroll[1], last);
        press(&mut a, KeyCode::Home);
        press(&mut a, KeyCode::Up);
        screen(&mut a);
        assert_eq!(a.scroll[1], 0);
    }

    #[test]
    fn text_from_proc_is_escaped_on_screen() {
        let mut a = app(vec![seg(7, 4096, "ev\u{1b}]0;x\u{7}il")]);
        a.mode = Mode::Filter("\u{1b}[2J".into());
        let s = screen(&mut a);
        assert!(!s.contains('\u{1b}') && !s.contains('\u{7}'), "{s}");
        assert!(s.contains("ev\\x1b]0;x\\x07il"), "{s}");
        assert!(s.contains("filter: \\x1b[2J_"), "{s}");
    }
}
