//! A streaming tar reader that extracts nothing: it walks the headers of a layer (ustar, GNU
//! long names, PAX `path`/`size`) and hands each regular file's bytes to the caller, who reads
//! only what it wants; the rest is skipped. Rule: hostile archives are errors, never effects —
//! absolute paths and `..` components, headers with bad checksums, long-name or PAX records over
//! [`MAX_HEADER`], and truncated input all end the walk with a reason.

use std::io::{self, Read};

/// The largest GNU long-name or PAX record accepted.
pub const MAX_HEADER: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
    Other,
}

#[derive(Debug)]
pub struct Entry {
    /// Normalised: no leading `./` or `/`, no trailing `/`.
    pub path: String,
    pub kind: Kind,
    pub size: u64,
}

pub struct Reader<R> {
    inner: R,
    /// Bytes of the current entry's data (plus padding) not yet consumed.
    pending: u64,
    remaining_in_entry: u64,
    done: bool,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn octal(field: &[u8]) -> io::Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // base-256
        let mut v: u64 = 0;
        for (i, b) in field.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { *b };
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(b as u64))
                .ok_or_else(|| bad("tar size field overflows"))?;
        }
        return Ok(v);
    }
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8)
        .map_err(|_| bad(format!("tar numeric field {text:?} is not octal")))
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Checks and normalises an entry path: relative, no `..`.
pub fn normalise(raw: &str) -> io::Result<String> {
    if raw.starts_with('/') {
        return Err(bad(format!("tar entry with an absolute path: {raw:?}")));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad(format!("tar entry escaping the root: {raw:?}"))),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            pending: 0,
            remaining_in_entry: 0,
            done: false,
        }
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.inner.read(&mut buf[..want])?;
            if got == 0 {
                return Err(bad("layer is truncated (tar data ends early)"));
            }
            n -= got as u64;
        }
        Ok(())
    }

    fn block(&mut self) -> io::Result<Option<[u8; 512]>> {
        let mut b = [0u8; 512];
        let mut filled = 0;
        while filled < 512 {
            let got = self.inner.read(&mut b[filled..])?;
            if got == 0 {
                if filled == 0 {
                    return Ok(None);
                }
                return Err(bad("layer is truncated (partial tar header)"));
            }
            filled += got;
        }
        Ok(Some(b))
    }

    fn read_record(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > MAX_HEADER {
            return Err(bad(format!(
                "tar extended header of {size} bytes (over {MAX_HEADER})"
            )));
        }
        let mut data = vec![0u8; size as usize];
        self.inner
            .read_exact(&mut data)
            .map_err(|_| bad("layer is truncated (tar extended header)"))?;
        self.skip(padding(size))?;
        Ok(data)
    }

    /// The next entry; its data may then be read through [`Reader::data`].
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        let pending = self.pending;
        self.skip(pending)?;
        self.pending = 0;
        self.remaining_in_entry = 0;
        let mut long_name: Option<String> = None;
        let mut pax_path: Option<String> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            let Some(h) = self.block()? else {
                // End without the two zero blocks: tolerated, as GNU tar does.
                self.done = true;
                return Ok(None);
            };
            if h.iter().all(|b| *b == 0) {
                self.done = true;
                return Ok(None);
            }
            let stored = octal(&h[148..156])?;
            let sum: u64 = h
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if (148..156).contains(&i) {
                        32
                    } else {
                        *b as u64
                    }
                })
                .sum();
            if stored != sum {
                return Err(bad(
                    "tar header checksum mismatch (not a tar layer, or corrupt)",
                ));
            }
            let size = octal(&h[124..136])?;
            let flag = h[156];
            match flag {
                b'L' => {
                    let data = self.read_record(size)?;
                    long_name = Some(cstr(&data));
                    continue;
                }
                b'x' => {
                    let data = self.read_record(size)?;
                    for (k, v) in pax_records(&data)? {
                        match k.as_str() {
                            "path" => pax_path = Some(v),
                            "size" => pax_size = Some(v.parse().map_err(|_| bad("bad PAX size"))?),
                            _ => {}
                        }
                    }
                    continue;
                }
                b'g' | b'K' => {
                    self.read_record(size)?;
                    continue;
                }
                _ => {}
            }
            let size = pax_size.unwrap_or(size);
            let name = match (pax_path, long_name) {
                (Some(p), _) => p,
                (None, Some(l)) => l,
                (None, None) => {
                    let name = cstr(&h[0..100]);
                    let prefix = if &h[257..262] == b"ustar" {
                        cstr(&h[345..500])
                    } else {
                        String::new()
                    };
                    if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}/{name}")
                    }
                }
            };
            let path = normalise(&name)?;
            let kind = match flag {
                b'0' | 0 | b'7' => Kind::File,
                b'5' => Kind::Dir,
                b'1' | b'2' => Kind::Link,
                _ => Kind::Other,
            };
            // Only regular files carry data (links and directories carry none whatever size says).
            let data =
                if kind == Kind::File || !matches!(flag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6') {
                    size
                } else {
                    0
                };
            self.pending = data + padding(data);
            self.remaining_in_entry = data;
            return Ok(Some(Entry { path, kind, size }));
        }
    }

    /// Reads up to `limit` bytes of the current entry's data (`None` when it is larger).
    pub fn data(&mut self, limit: u64) -> io::Result<Option<Vec<u8>>> {
        if self.remaining_in_entry > limit {
            return Ok(None);
        }
        let n = self.remaining_in_entry;
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| bad("layer is truncated (file data ends early)"))?;
        self.remaining_in_entry = 0;
        self.pending -= n;
        Ok(Some(buf))
    }

    /// Streams the current entry's data through `f` in chunks (a file of any size).
    pub fn stream(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        while self.remaining_in_entry > 0 {
            let want = self.remaining_in_entry.min(buf.len() as u64) as usize;
            let got = self.inner.read(&mut buf[..want])?;
            if got == 0 {
                return Err(bad("layer is truncated (file data ends early)"));
            }
            f(&buf[..got]);
            self.remaining_in_entry -= got as u64;
            self.pending -= got as u64;
        }
        Ok(())
    }
}

fn padding(size: u64) -> u64 {
    (512 - size % 512) % 512
}

fn pax_records(data: &[u8]) -> io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(|| bad("malformed PAX record"))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|l| *l > space && *l <= rest.len())
            .ok_or_else(|| bad("malformed PAX record length"))?;
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|b| *b == b'=') {
            out.push((
                String::from_utf8_lossy(&record[..eq]).into_owned(),
                String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
            ));
        }
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ustar header block for `name`.
    pub fn header(name: &str, size: u64, flag: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len().min(100)].copy_from_slice(&name.as_bytes()[..name.len().min(100)]);
        h[100..107].copy_from_slice(b"0000644");
        let s = format!("{size:011o}");
        h[124..135].copy_from_slice(s.as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = flag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| *b as u64).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    pub fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in files {
            out.extend_from_slice(&header(name, data.len() as u64, b'0'));
            out.extend_from_slice(data);
            out.resize(out.len() + padding(data.len() as u64) as usize, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    #[test]
    fn reads_files_and_refuses_escapes() {
        let tar = archive(&[("./etc/os-release", b"ID=debian\n"), ("usr/x", b"abc")]);
        let mut r = Reader::new(&tar[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.path, "etc/os-release");
        assert_eq!(r.data(100).unwrap().unwrap(), b"ID=debian\n");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.path, "usr/x");
        assert!(r.next_entry().unwrap().is_none());

        for name in ["/etc/passwd", "a/../../etc"] {
            let tar = archive(&[(name, b"x")]);
            let err = Reader::new(&tar[..]).next_entry().unwrap_err();
            assert!(err.to_string().contains("tar entry"), "{err}");
        }
        // A truncated archive.
        let tar = archive(&[("a", &[7u8; 2000])]);
        let mut r = Reader::new(&tar[..1000]);
        r.next_entry().unwrap();
        assert!(
            r.data(1 << 20)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        // A huge GNU long name.
        let mut tar = header("././@LongLink", 10 << 20, b'L').to_vec();
        tar.resize(4096, b'a');
        let err = Reader::new(&tar[..]).next_entry().unwrap_err();
        assert!(err.to_string().contains("extended header"), "{err}");
    }
}
