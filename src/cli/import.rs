//! `enroute import FILE`: a CSV or NDJSON file of numbers sent to a running server's
//! admin API (`POST /v1/numbers:import`) in a stream, with progress on stderr.
//!
//! Owns: the command's arguments, help text and exit codes; the file (or standard
//! input) opened, its format told from `--format`, its name or its first byte; the
//! reader the upload pulls from, which counts bytes and lines and notices a file that
//! changes length under it; the progress display (a bar on a terminal, a plain line
//! every few seconds otherwise); and what the result and a refusal print. Must not
//! touch: HTTP, the endpoint or the problem format (`enroute::client`), nor the import
//! formats themselves (the server checks every line).

use super::output::{self, report};
use super::setup;
use clap::{Args, ValueEnum};
use enroute::client::{
    Client, ClientError, Endpoint, FieldProblem, ImportFormat, ImportMode, ImportQuery, Problem,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub const ABOUT: &str = "\
Send a CSV or NDJSON file of numbers to a running server's admin API \
(POST /v1/numbers:import) in a stream: the file is never read whole, so it may hold \
10^8 numbers. The server checks every line, then commits all or nothing once the whole \
file is in; the command waits for that commit.

The format is --format, else the file's extension (.csv; .ndjson or .jsonl), else its \
first byte ({ is NDJSON, anything else CSV). CSV has a header line naming columns among \
number,uri,order,preference,ttl,service, one route a row; NDJSON has one number body \
with its \"number\" a line. In merge mode (the default) the file's numbers are set and \
the others stay; {\"number\": \"+…\", \"delete\": true} (NDJSON) or a number's only row \
with an empty uri (CSV) deletes it. With --replace the zone's numbers become exactly \
those of the file.

The command runs at a lower CPU priority (nice 10): on the server's own machine, calls \
are answered first. Progress goes to stderr: a bar on a terminal, otherwise a line every 5 seconds and one \
when the upload is done. The result goes to stdout: imported: N numbers, M routes, D \
deleted.";

pub const EXIT: &str = "\
Where the API is: --url, else ENROUTE_ADMIN_URL, else http://<admin.listen> from the \
configuration. The token: --token or --token-file, else ENROUTE_ADMIN_TOKEN, else the \
content of admin.token_file from the configuration (only read, never written).

Exit codes:
  0  the import committed
  1  the server refused it (HTTP 4xx): each error is printed with its line, e.g.
     line 9: number: ...; nothing was imported
  2  bad arguments or configuration, or the file cannot be read (nothing imported)
  3  the server is not reachable, timed out, answered 5xx, or the connection was lost
     during the upload (nothing imported) or after it (the commit's outcome unknown)";

/// The type of the file, when its name does not tell.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// text/csv: a header line, then one route a row.
    Csv,
    /// application/x-ndjson: one number body a line.
    Ndjson,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The file of numbers (CSV or NDJSON), or - for standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The zone (origin) the numbers belong to, e.g. 2.3.6.1.4.4.e164.arpa.: the server
    /// refuses numbers outside it; with --replace, the zone whose numbers are replaced
    /// [default: each number's own zone]
    #[arg(long, value_name = "ORIGIN")]
    zone: Option<String>,
    /// Make the zone's numbers exactly those of the file: numbers not in it are deleted
    /// (all or nothing, as any import). Needs --zone.
    #[arg(long, requires = "zone")]
    replace: bool,
    /// The file's format [default: from its extension, else from its first byte].
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Admin API URL [default: ENROUTE_ADMIN_URL, else http://<admin.listen> from the
    /// configuration].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Bearer token [default: ENROUTE_ADMIN_TOKEN, else the content of admin.token_file];
    /// prefer --token-file or the variable: a flag shows in the process list.
    #[arg(long, value_name = "TOKEN", conflicts_with = "token_file")]
    token: Option<String>,
    /// A file holding the bearer token (the server's admin.token_file, for instance).
    #[arg(long, value_name = "F")]
    token_file: Option<PathBuf>,
    /// Configuration to read admin.listen and admin.token_file from [default:
    /// config/enroute.toml when it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the server's JSON answer instead of text.
    #[arg(long)]
    json: bool,
    /// No progress on stderr (errors and warnings still are).
    #[arg(long, short)]
    quiet: bool,
}

/// `enroute import FILE …`.
pub fn run(args: &ImportArgs) -> ExitCode {
    // Before any thread is started: those inherit it.
    enroute::keeper::lower_this_threads_priority();
    // The file first: a missing one is bad usage whatever the server would say.
    let source = match Source::open(&args.file, args.format) {
        Ok(s) => s,
        Err(e) => return report(&e, None),
    };
    let client = match connect(args) {
        Ok(c) => c,
        Err(e) => return report(&e, None),
    };
    let query = ImportQuery {
        format: source.format,
        mode: if args.replace {
            ImportMode::Replace
        } else {
            ImportMode::Merge
        },
        zone: args.zone.clone(),
        length: source.length,
    };
    let progress = Progress::new(args.quiet, &source, &query, client.endpoint());
    match send(&client, &query, source, progress) {
        Ok(answer) => print_result(&answer, args.json),
        Err(ClientError::Refused(p)) => report_refusal(&p, client.endpoint()),
        Err(e) => report(&e, Some(client.endpoint())),
    }
}

/// The client for the flags; `--token-file` is this command's own.
fn connect(args: &ImportArgs) -> Result<Client, ClientError> {
    let Some(token_file) = &args.token_file else {
        return setup::connect(
            args.url.as_deref(),
            args.token.as_deref(),
            args.config.as_deref(),
        );
    };
    let endpoint = Endpoint::resolve_with_token_file(args.url.as_deref(), token_file, || {
        let c =
            setup::read_config(args.config.as_deref()).map_err(|e| format!("config error: {e}"))?;
        setup::init_quiet_logging(&c);
        Ok(c)
    })?;
    Ok(Client::new(endpoint))
}

/// The file to send, opened, with what is known of it before the upload.
struct Source {
    /// As messages name it: the path, or `standard input`.
    name: String,
    reader: Box<dyn BufRead>,
    format: ImportFormat,
    /// A regular file's length; pipes and standard input have none.
    length: Option<u64>,
}

impl Source {
    fn open(path: &Path, format: Option<FormatArg>) -> Result<Source, ClientError> {
        let (name, reader, length): (String, Box<dyn BufRead>, Option<u64>) =
            if path.as_os_str() == "-" {
                let stdin = BufReader::with_capacity(BUFFER, io::stdin().lock());
                ("standard input".into(), Box::new(stdin), None)
            } else {
                let name = path.display().to_string();
                let (file, length) = open_file(path, &name)?;
                (
                    name,
                    Box::new(BufReader::with_capacity(BUFFER, file)),
                    length,
                )
            };
        let mut source = Source {
            name,
            reader,
            format: ImportFormat::Csv,
            length,
        };
        source.refuse_empty()?;
        source.format = match format {
            Some(FormatArg::Csv) => ImportFormat::Csv,
            Some(FormatArg::Ndjson) => ImportFormat::Ndjson,
            None => match format_by_name(path)? {
                Some(f) => f,
                None => source.sniff()?,
            },
        };
        Ok(source)
    }

    /// An empty file or input is refused before anything is sent: with `--replace` it
    /// would empty the zone, and it is more likely a producer that failed (`zcat` of a
    /// missing file) than a wish. Waits for the first bytes of a pipe.
    fn refuse_empty(&mut self) -> Result<(), ClientError> {
        let head = self
            .reader
            .fill_buf()
            .map_err(|e| ClientError::Usage(format!("{}: {e}", self.name)))?;
        if head.is_empty() {
            return Err(ClientError::Usage(format!(
                "{} is empty (an import needs at least a CSV header line); nothing was sent",
                self.name
            )));
        }
        Ok(())
    }

    /// The format by the first byte that is not blank (nor a UTF-8 byte order mark):
    /// an NDJSON line is an object, a CSV header a column name. Nothing is consumed.
    fn sniff(&mut self) -> Result<ImportFormat, ClientError> {
        let head = self
            .reader
            .fill_buf()
            .map_err(|e| ClientError::Usage(format!("{}: {e}", self.name)))?;
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        Ok(match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => ImportFormat::Ndjson,
            _ => ImportFormat::Csv,
        })
    }
}

/// Reads are this large: few system calls, bounded memory.
const BUFFER: usize = 256 << 10;

/// The file and its length when it is a regular file; a missing or unreadable file,
/// or a directory, is bad usage.
fn open_file(path: &Path, name: &str) -> Result<(std::fs::File, Option<u64>), ClientError> {
    let usage = |why: String| ClientError::Usage(format!("{name}: {why}"));
    let file = std::fs::File::open(path).map_err(|e| usage(e.to_string()))?;
    let meta = file.metadata().map_err(|e| usage(e.to_string()))?;
    if meta.is_dir() {
        return Err(usage("is a directory".into()));
    }
    if !meta.is_file() {
        // A pipe (`<(zcat numbers.csv.gz)`): its length is unknown until its end.
        return Ok((file, None));
    }
    Ok((file, Some(meta.len())))
}

/// The format by the file's extension; `None` when it does not tell. A compressed file
/// is refused: the server takes plain text.
fn format_by_name(path: &Path) -> Result<Option<ImportFormat>, ClientError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        Some("csv") => Some(ImportFormat::Csv),
        Some("ndjson" | "jsonl") => Some(ImportFormat::Ndjson),
        Some(z @ ("gz" | "xz" | "zst" | "bz2" | "zip")) => {
            return Err(ClientError::Usage(format!(
                "{}: a compressed file (.{z}) is not sent as it is; decompress it into \
                 standard input: e.g. zcat FILE | enroute import - --format csv",
                path.display()
            )));
        }
        _ => None,
    })
}

/// Uploads the file and waits for the server's answer; what went wrong locally (the
/// file) is told apart from what went wrong on the way (the connection).
fn send(
    client: &Client,
    query: &ImportQuery,
    source: Source,
    progress: Progress,
) -> Result<enroute::client::Answer, ClientError> {
    let mut upload = Upload::new(source.reader, source.length, progress);
    let answered = client.import(query, &mut upload);
    upload.progress.finish();
    match answered {
        Err(ClientError::Unreachable(why)) => Err(upload.explain(&source.name, why)),
        other => other,
    }
}

/// How much of the file has gone: bytes and lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    sent: u64,
    lines: u64,
}

/// The file as the upload reads it: counted for the progress display, and held to
/// the length announced in `Content-Length` (a file that grows or shrinks meanwhile
/// ends the upload with an error instead of sending half a line).
struct Upload<R> {
    inner: R,
    length: Option<u64>,
    sent: u64,
    newlines: u64,
    /// The last byte sent was a newline (or nothing was sent): the line count needs
    /// no unterminated last line added.
    at_line_start: bool,
    /// Why reading the file failed: a local error, not the connection's.
    failed: Option<String>,
    done: bool,
    progress: Progress,
}

impl<R: Read> Upload<R> {
    fn new(inner: R, length: Option<u64>, progress: Progress) -> Upload<R> {
        Upload {
            inner,
            length,
            sent: 0,
            newlines: 0,
            at_line_start: true,
            failed: None,
            done: false,
            progress,
        }
    }

    fn counts(&self) -> Counts {
        Counts {
            sent: self.sent,
            lines: self.newlines + u64::from(!self.at_line_start),
        }
    }

    /// One read of the file, never past the announced length.
    fn read_file(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(length) = self.length else {
            return read_retrying(&mut self.inner, buf);
        };
        let room = length.saturating_sub(self.sent).min(buf.len() as u64) as usize;
        if room == 0 {
            return Ok(0);
        }
        match read_retrying(&mut self.inner, &mut buf[..room])? {
            0 => Err(io::Error::other(format!(
                "the file shrank while it was being sent ({} of {length} bytes read)",
                self.sent
            ))),
            n => Ok(n),
        }
    }

    /// At the announced length: one more byte means the file grew under the upload.
    fn check_end(&mut self) -> io::Result<()> {
        if self.length.is_some_and(|l| self.sent >= l) {
            let mut probe = [0u8; 1];
            if read_retrying(&mut self.inner, &mut probe)? > 0 {
                return Err(io::Error::other(
                    "the file grew while it was being sent (it is being written to?)",
                ));
            }
        }
        Ok(())
    }

    /// The end of the file: the upload is complete, the server commits now.
    fn end(&mut self) {
        if !self.done {
            self.done = true;
            self.progress.uploaded(self.counts());
        }
    }

    /// A transport failure, said as what it means for the import: the file could not
    /// be read (nothing imported), the connection was lost during the upload (nothing
    /// imported) or after it (the commit's outcome is unknown).
    fn explain(&self, name: &str, why: String) -> ClientError {
        let sent = decimal_bytes(self.sent);
        if let Some(read) = &self.failed {
            return ClientError::Usage(format!(
                "{name}: {read}; the upload stopped after {sent}, nothing was imported"
            ));
        }
        if self.done {
            return ClientError::Unreachable(format!(
                "{why}\nthe whole file was sent ({sent}): whether the server committed \
                 the import is unknown; check the numbers before sending it again"
            ));
        }
        ClientError::Unreachable(format!(
            "{why}\nthe upload stopped after {sent}: nothing was imported"
        ))
    }
}

/// A read, again when a signal interrupted it.
fn read_retrying(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl<R: Read> Read for Upload<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = match self.read_file(buf) {
            Ok(n) => n,
            Err(e) => {
                self.failed = Some(e.to_string());
                return Err(e);
            }
        };
        if n == 0 {
            self.end();
            return Ok(0);
        }
        self.sent += n as u64;
        self.newlines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        self.at_line_start = buf[n - 1] == b'\n';
        if let Err(e) = self.check_end() {
            self.failed = Some(e.to_string());
            return Err(e);
        }
        self.progress.advance(self.counts());
        if self.length == Some(self.sent) {
            // The client stops reading at the announced length: this is the end.
            self.end();
        }
        Ok(n)
    }
}

/// How often a plain progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The progress display on stderr.
enum Progress {
    Quiet,
    /// A terminal: a bar redrawn in place (indicatif limits the redraws).
    Bar {
        bar: ProgressBar,
        start: Instant,
    },
    /// A log or a pipe: a line every [`PLAIN_EVERY`].
    Plain {
        total: Option<u64>,
        start: Instant,
        last: Instant,
    },
}

impl Progress {
    fn new(quiet: bool, source: &Source, query: &ImportQuery, endpoint: &Endpoint) -> Progress {
        let now = Instant::now();
        if quiet {
            return Progress::Quiet;
        }
        if io::stderr().is_terminal() {
            return Progress::Bar {
                bar: new_bar(source.length),
                start: now,
            };
        }
        let size = source
            .length
            .map(|l| format!(", {}", decimal_bytes(l)))
            .unwrap_or_default();
        eprintln!(
            "import: sending {} ({}{size}) to {}, mode {}",
            source.name,
            query.format.content_type(),
            endpoint.base,
            query.mode.as_str()
        );
        Progress::Plain {
            total: source.length,
            start: now,
            last: now,
        }
    }

    fn advance(&mut self, counts: Counts) {
        match self {
            Progress::Quiet => {}
            Progress::Bar { bar, start } => {
                bar.set_position(counts.sent);
                bar.set_message(lines_text(counts, start.elapsed()));
            }
            Progress::Plain { total, start, last } => {
                if last.elapsed() >= PLAIN_EVERY {
                    *last = Instant::now();
                    eprintln!("{}", plain_line(counts, *total, start.elapsed()));
                }
            }
        }
    }

    /// The whole file is sent: the rest is the server's commit.
    fn uploaded(&mut self, counts: Counts) {
        match self {
            Progress::Quiet => {}
            Progress::Bar { bar, start, .. } => {
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!(
                    "{}; waiting for the server to commit",
                    sent_text(counts, start.elapsed())
                ));
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            Progress::Plain { start, .. } => eprintln!(
                "import: {}; waiting for the server to commit",
                sent_text(counts, start.elapsed())
            ),
        }
    }

    /// The answer is in: the bar goes, so the result prints on a clean line.
    fn finish(&self) {
        if let Progress::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

fn new_bar(length: Option<u64>) -> ProgressBar {
    let (bar, template) = match length {
        Some(l) => (
            ProgressBar::with_draw_target(Some(l), ProgressDrawTarget::stderr()),
            "{spinner} {elapsed:>4} [{wide_bar}] {decimal_bytes}/{decimal_total_bytes} \
             ({percent}%), {msg}, ETA {eta}",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{spinner} {elapsed:>4} {decimal_bytes} sent, {msg}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("0 lines");
    bar
}

/// `1234567 lines, 250000 lines/s`.
fn lines_text(counts: Counts, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    format!(
        "{} lines, {:.0} lines/s",
        counts.lines,
        counts.lines as f64 / secs
    )
}

/// `import: 12.3 MB of 100.0 MB (12%), 1234567 lines, 250000 lines/s`.
fn plain_line(counts: Counts, total: Option<u64>, elapsed: Duration) -> String {
    let of = match total {
        Some(t) if t > 0 => format!(
            " of {} ({}%)",
            decimal_bytes(t),
            counts.sent.saturating_mul(100) / t
        ),
        _ => String::new(),
    };
    format!(
        "import: {}{of}, {}",
        decimal_bytes(counts.sent),
        lines_text(counts, elapsed)
    )
}

/// `sent 100.0 MB, 4000001 lines in 12.3 s`.
fn sent_text(counts: Counts, elapsed: Duration) -> String {
    format!(
        "sent {}, {} lines in {:.1} s",
        decimal_bytes(counts.sent),
        counts.lines,
        elapsed.as_secs_f64()
    )
}

/// Bytes in decimal units, as disks and links are sold: `999 B`, `12.3 MB`.
fn decimal_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The committed import: its counts on stdout (or the server's JSON), its warnings on
/// stderr.
fn print_result(answer: &enroute::client::Answer, json: bool) -> ExitCode {
    let v = match answer.json() {
        Ok(v) => v,
        Err(e) => return report(&e, None),
    };
    if json {
        println!("{}", output::pretty_json(&answer.body));
    } else {
        println!("{}", imported_text(&v));
    }
    let warnings = output::warnings(&v);
    for w in &warnings {
        eprintln!("enroute: warning: {w}");
    }
    let total = v.get("total_warnings").and_then(Value::as_u64);
    if let Some(total) = total.filter(|&t| t > warnings.len() as u64) {
        eprintln!("enroute: {} of {total} warnings listed", warnings.len());
    }
    ExitCode::SUCCESS
}

/// `imported: N numbers, M routes, D deleted` (a server without deletes counts 0).
fn imported_text(v: &Value) -> String {
    let count = |key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    format!(
        "imported: {} numbers, {} routes, {} deleted",
        count("numbers"),
        count("routes"),
        count("deleted")
    )
}

/// A refused import on stderr: the problem's detail, each error with its line, and
/// how many there were when the server listed only the first; exit 1.
fn report_refusal(p: &Problem, endpoint: &Endpoint) -> ExitCode {
    for line in refusal_lines(p) {
        eprintln!("enroute: {line}");
    }
    if p.status == 401 {
        eprintln!("enroute: the token sent came from {}", endpoint.token_from);
    }
    ExitCode::from(ClientError::Refused(p.clone()).exit_code())
}

fn refusal_lines(p: &Problem) -> Vec<String> {
    let mut lines = vec![format!("{} {}: {}", p.status, p.title, p.detail)];
    lines.extend(p.errors.iter().map(field_text));
    if let Some(total) = p.total_errors.filter(|&t| t > p.errors.len() as u64) {
        lines.push(format!("{} of {total} errors listed", p.errors.len()));
    }
    lines
}

/// `line 9: number: "+44x" is not a number`.
fn field_text(e: &FieldProblem) -> String {
    let mut s = String::new();
    if let Some(line) = e.line {
        s.push_str(&format!("line {line}: "));
    }
    if !e.field.is_empty() {
        s.push_str(&format!("{}: ", e.field));
    }
    s.push_str(&e.detail);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(data: &[u8], length: Option<u64>) -> (Vec<u8>, Upload<&[u8]>) {
        let mut up = Upload::new(data, length, Progress::Quiet);
        let mut out = Vec::new();
        // Small reads, as a busy connection takes the body.
        let mut buf = [0u8; 3];
        loop {
            match up.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        (out, up)
    }

    #[test]
    fn the_upload_counts_lines_and_ends_at_the_length() {
        let data = b"number,uri\n+441632960001,sip:a@x\n+441632960002,sip:b@x";
        let (out, up) = upload(data, Some(data.len() as u64));
        assert_eq!(out, data);
        assert!(up.done && up.failed.is_none());
        // The last line has no newline and still counts.
        assert_eq!(up.counts().lines, 3);
        let (_, up) = upload(b"a\nb\n", None);
        assert_eq!(up.counts(), Counts { sent: 4, lines: 2 });
    }

    #[test]
    fn a_file_that_changes_length_fails_the_upload() {
        // Longer than announced: grew under the upload.
        let (_, up) = upload(b"a\nb\nc\n", Some(4));
        assert!(
            up.failed.as_deref().unwrap().contains("grew"),
            "{:?}",
            up.failed
        );
        let (_, up) = upload(b"a\n", Some(10));
        assert!(up.failed.as_deref().unwrap().contains("shrank"));
        let e = up.explain("numbers.csv", "reset".into());
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("nothing was imported"), "{e}");
    }

    #[test]
    fn lost_connections_say_whether_the_commit_may_have_happened() {
        let (_, up) = upload(b"a\n", Some(2));
        let e = up.explain("f.csv", "connection reset".into());
        assert_eq!(e.exit_code(), 3);
        assert!(
            e.to_string().contains("whether the server committed"),
            "{e}"
        );
        let up = Upload::new(&b""[..], None, Progress::Quiet);
        let e = up.explain("f.csv", "connection reset".into());
        assert!(e.to_string().contains("nothing was imported"), "{e}");
    }

    #[test]
    fn progress_lines_read_as_sizes_and_rates() {
        let c = Counts {
            sent: 12_345_678,
            lines: 1_000_000,
        };
        assert_eq!(
            plain_line(c, Some(100_000_000), Duration::from_secs(4)),
            "import: 12.3 MB of 100.0 MB (12%), 1000000 lines, 250000 lines/s"
        );
        assert_eq!(
            plain_line(c, None, Duration::from_secs(4)),
            "import: 12.3 MB, 1000000 lines, 250000 lines/s"
        );
        assert_eq!(decimal_bytes(999), "999 B");
        assert_eq!(decimal_bytes(999_960), "1.0 MB");
        assert_eq!(decimal_bytes(4_200_000_000), "4.2 GB");
    }

    #[test]
    fn formats_by_name_then_by_first_byte() {
        let by = |p: &str| format_by_name(Path::new(p)).unwrap();
        assert_eq!(by("n.CSV"), Some(ImportFormat::Csv));
        assert_eq!(by("n.jsonl"), Some(ImportFormat::Ndjson));
        assert_eq!(by("n.ndjson"), Some(ImportFormat::Ndjson));
        assert_eq!(by("numbers"), None);
        assert_eq!(
            format_by_name(Path::new("n.csv.gz"))
                .unwrap_err()
                .exit_code(),
            2
        );
        let sniff = |text: &'static [u8]| {
            let mut s = Source {
                name: "t".into(),
                reader: Box::new(text),
                format: ImportFormat::Csv,
                length: None,
            };
            let f = s.sniff().unwrap();
            // Sniffing consumes nothing.
            assert_eq!(s.reader.fill_buf().unwrap(), text);
            f
        };
        assert_eq!(
            sniff(b"\xEF\xBB\xBF \n{\"number\":1}"),
            ImportFormat::Ndjson
        );
        assert_eq!(sniff(b"number,uri\n"), ImportFormat::Csv);
    }

    #[test]
    fn refusals_list_each_line_and_the_total() {
        let body = br#"{"title":"Unprocessable Entity","status":422,
            "detail":"line 3: number: bad; nothing imported","total_errors":7,
            "errors":[{"line":3,"field":"number","detail":"bad"},
                      {"line":9,"field":"","detail":"worse"}]}"#;
        let p = Problem::from_answer(422, body);
        assert_eq!(
            refusal_lines(&p),
            [
                "422 Unprocessable Entity: line 3: number: bad; nothing imported",
                "line 3: number: bad",
                "line 9: worse",
                "2 of 7 errors listed",
            ]
        );
        let v = serde_json::json!({"numbers": 3, "routes": 5});
        assert_eq!(
            imported_text(&v),
            "imported: 3 numbers, 5 routes, 0 deleted"
        );
    }
}
