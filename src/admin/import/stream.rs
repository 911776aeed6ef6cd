//! An import body as a stream: the async handler hands the body's chunks as they
//! arrive to the bulk thread, which reads them through [`BodyReader`], a blocking
//! [`Read`]. The body is never held whole: at most [`QUEUED_CHUNKS`] chunks wait
//! between the two, and the parsers keep one line (or CSV record) at a time.
//!
//! Owns: the hand-over ([`feed`]), how an upload can end ([`Ending`]: whole; cut off by
//! the client, the network or a stall; a line over [`MAX_LINE_BYTES`]), and the line
//! count the limit is reported with.
//!
//! Must not touch: what the lines say (the parsers in `csv.rs` and `ndjson.rs`).

use axum::body::{Body, Bytes, HttpBody};
use std::io::{self, Read};
use std::time::Duration;
use tokio::sync::mpsc;

/// Chunks waiting between the handler and the parser: the upload is read no faster
/// than it is parsed.
pub const QUEUED_CHUNKS: usize = 16;

/// The longest line (bytes between two newlines) an import takes: a number with 64
/// routes fits many times over, and a line without end cannot take the memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// How long an upload may send nothing before it is given up.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the handler passes to the parser.
pub enum Piece {
    Data(Bytes),
    /// The body ended as the client meant it to.
    End,
    /// The body did not end well (the reason).
    Cut(Ending),
}

/// How an upload ended, when not whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The connection failed or the client went away before the end of the body.
    Broken(String),
    /// Nothing arrived for [`IDLE_TIMEOUT`].
    Stalled,
    /// A line longer than [`MAX_LINE_BYTES`], at this line.
    LineTooLong(usize),
    /// CSV: a quoted field still open at the end of this line (an odd number of `"`
    /// on it). No import field holds a line break, and a quote left open would make
    /// the rest of the upload one field held in memory.
    OpenQuote(usize),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Broken(why) => write!(f, "the upload broke off: {why}"),
            Ending::Stalled => write!(
                f,
                "the upload sent nothing for {} s",
                IDLE_TIMEOUT.as_secs()
            ),
            Ending::LineTooLong(line) => {
                write!(f, "line {line}: longer than {MAX_LINE_BYTES} bytes")
            }
            Ending::OpenQuote(line) => write!(
                f,
                "line {line}: a quoted field is not closed on its line (an odd number of \")"
            ),
        }
    }
}

/// Reads `body` and passes it on, chunk by chunk, until it ends, breaks or stalls.
/// When the parser stops taking it early (a refusal that needs no more lines), the
/// rest is read and dropped: a client that sends its whole body before it reads the
/// answer (most do) then gets the answer rather than a broken pipe.
pub async fn feed(mut body: Body, to: mpsc::Sender<Piece>) {
    let mut to = Some(to);
    loop {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx));
        let piece = match tokio::time::timeout(IDLE_TIMEOUT, frame).await {
            Err(_) => Piece::Cut(Ending::Stalled),
            Ok(None) => Piece::End,
            Ok(Some(Err(e))) => Piece::Cut(Ending::Broken(e.to_string())),
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) if data.is_empty() => continue,
                Ok(data) => Piece::Data(data),
                Err(_trailers) => continue,
            },
        };
        let last = !matches!(piece, Piece::Data(_));
        if let Some(parser) = &to
            && parser.send(piece).await.is_err()
        {
            to = None;
        }
        if last {
            return;
        }
    }
}

/// The parser's side: the body as a blocking reader. It fails (an I/O error) when the
/// upload did not end whole, and [`BodyReader::ending`] then says why; the handler
/// going away without saying the body ended counts as broken.
pub struct BodyReader {
    from: mpsc::Receiver<Piece>,
    chunk: Bytes,
    ending: Option<Ending>,
    done: bool,
    /// Newlines read so far (the current line is `lines + 1`).
    lines: usize,
    /// Bytes read since the last newline.
    line_bytes: usize,
    /// CSV: check that no quoted field spans lines ([`Ending::OpenQuote`]).
    csv_quotes: bool,
    /// Quotes seen on the current line, modulo 2.
    open_quote: bool,
}

impl BodyReader {
    /// A reader of the pieces `from` sends; `csv` turns on the quote check.
    pub fn new(from: mpsc::Receiver<Piece>, csv: bool) -> Self {
        BodyReader {
            from,
            chunk: Bytes::new(),
            ending: None,
            done: false,
            lines: 0,
            line_bytes: 0,
            csv_quotes: csv,
            open_quote: false,
        }
    }

    /// Why the upload did not end whole; `None` while it is fine.
    pub fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }

    fn fail(&mut self, ending: Ending) -> io::Error {
        let e = io::Error::other(ending.to_string());
        self.ending = Some(ending);
        e
    }

    /// Counts the lines of `bytes` and checks the line length (and, for CSV, that every
    /// quote opened on a line is closed on it).
    fn count(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut from = 0;
        for nl in memchr::memchr_iter(b'\n', bytes) {
            if self.line_bytes + (nl - from) > MAX_LINE_BYTES {
                return Err(self.fail(Ending::LineTooLong(self.lines + 1)));
            }
            self.note_quotes(&bytes[from..nl]);
            if self.open_quote {
                return Err(self.fail(Ending::OpenQuote(self.lines + 1)));
            }
            self.lines += 1;
            self.line_bytes = 0;
            from = nl + 1;
        }
        self.note_quotes(&bytes[from..]);
        self.line_bytes += bytes.len() - from;
        if self.line_bytes > MAX_LINE_BYTES {
            return Err(self.fail(Ending::LineTooLong(self.lines + 1)));
        }
        Ok(())
    }
}

impl BodyReader {
    /// Keeps the parity of the quotes of the current line (`""`, an escaped quote,
    /// leaves it as it was).
    fn note_quotes(&mut self, part: &[u8]) {
        if self.csv_quotes {
            let quotes = memchr::memchr_iter(b'"', part).count();
            self.open_quote ^= quotes % 2 == 1;
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.ending {
            return Err(io::Error::other(e.to_string()));
        }
        while self.chunk.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.from.blocking_recv() {
                Some(Piece::Data(data)) => self.chunk = data,
                Some(Piece::End) => self.done = true,
                Some(Piece::Cut(ending)) => return Err(self.fail(ending)),
                None => {
                    return Err(self.fail(Ending::Broken(
                        "the request was dropped before its end".into(),
                    )));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        let taken = self.chunk.split_to(n);
        self.count(&taken)?;
        buf[..n].copy_from_slice(&taken);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(pieces: Vec<Piece>) -> BodyReader {
        let (tx, rx) = mpsc::channel(pieces.len() + 1);
        for p in pieces {
            tx.try_send(p).ok().unwrap();
        }
        BodyReader::new(rx, true)
    }

    #[test]
    fn a_whole_body_reads_to_its_end_across_chunks() {
        let mut r = reader(vec![
            Piece::Data(Bytes::from_static(b"ab\ncd")),
            Piece::Data(Bytes::from_static(b"e\n")),
            Piece::End,
        ]);
        let mut all = String::new();
        r.read_to_string(&mut all).unwrap();
        assert_eq!(all, "ab\ncde\n");
        assert_eq!(r.ending(), None);
    }

    #[test]
    fn a_body_without_its_end_is_broken_not_short() {
        let mut r = reader(vec![Piece::Data(Bytes::from_static(b"ab\n"))]);
        let mut all = Vec::new();
        assert!(r.read_to_end(&mut all).is_err());
        assert!(matches!(r.ending(), Some(Ending::Broken(_))));
        let mut r = reader(vec![Piece::Cut(Ending::Stalled)]);
        assert!(r.read_to_end(&mut all).is_err());
        assert_eq!(r.ending(), Some(&Ending::Stalled));
    }

    #[test]
    fn a_quote_left_open_at_the_end_of_its_line_is_named() {
        let mut r = reader(vec![
            Piece::Data(Bytes::from_static(b"number,uri\n+1,\"sip:a@x\"\"\"\n")),
            Piece::Data(Bytes::from_static(b"+2,\"sip:b@x\n+3,sip:c@x\"\n")),
            Piece::End,
        ]);
        let mut all = Vec::new();
        assert!(r.read_to_end(&mut all).is_err());
        assert_eq!(r.ending(), Some(&Ending::OpenQuote(3)));
    }

    #[test]
    fn a_line_over_the_limit_is_named() {
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        let mut r = reader(vec![
            Piece::Data(Bytes::from_static(b"1\n2\n")),
            Piece::Data(Bytes::from(long)),
            Piece::End,
        ]);
        let mut all = Vec::new();
        assert!(r.read_to_end(&mut all).is_err());
        assert_eq!(r.ending(), Some(&Ending::LineTooLong(3)));
    }
}
