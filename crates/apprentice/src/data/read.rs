//! Opening files that may or may not be gzip-compressed.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::DataError;

/// The first two bytes of every gzip stream.
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens `path` for reading, decompressing on the fly when the content (not the name) says
/// gzip, so that renamed or re-compressed files still load.
pub(super) fn open(path: &Path) -> Result<Box<dyn Read>, DataError> {
    let io_error = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut prefix = [0u8; 2];
    let got = read_up_to(&mut file, &mut prefix).map_err(io_error)?;
    // The peeked bytes are put back in front so the parser sees the whole stream.
    let stream = Cursor::new(prefix[..got].to_vec()).chain(file);
    if prefix[..got] == GZIP_MAGIC {
        Ok(Box::new(MultiGzDecoder::new(stream)))
    } else {
        Ok(Box::new(stream))
    }
}

/// Fills as much of `buf` as the reader can supply; returns the count (short only at the end).
pub(super) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Shortens `text` for an error message so one bad cell cannot produce a huge message.
pub(super) fn snippet(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    if text.chars().count() <= MAX_CHARS {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(MAX_CHARS).collect();
        format!("{head:?}...")
    }
}
