//! Content digests (`algorithm:hex`) as the OCI image spec defines them. Only `sha256` and `sha512`
//! are accepted: they are the registered algorithms and the only ones clients produce.

use std::fmt;
use std::str::FromStr;

/// A registered digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// How many hex characters a digest of this algorithm has.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Algorithm::Sha256 => &ring::digest::SHA256,
            Algorithm::Sha512 => &ring::digest::SHA512,
        }
    }
}

/// A validated digest. Its string form is canonical (lower-case hex), so it is safe to use as a
/// storage key component and as a database key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    text: String,
    algo_len: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest must have the form algorithm:hex")]
    Malformed,
    #[error("unsupported digest algorithm {0:?} (sha256 and sha512 are supported)")]
    UnsupportedAlgorithm(String),
    #[error("digest hex must be {expected} lower-case hexadecimal characters")]
    BadHex { expected: usize },
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        match &self.text[..self.algo_len] {
            "sha512" => Algorithm::Sha512,
            _ => Algorithm::Sha256,
        }
    }

    /// The hexadecimal part.
    pub fn hex(&self) -> &str {
        &self.text[self.algo_len + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Digest of a complete in-memory byte string (manifests, small test blobs).
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finish()
    }

    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, bytes)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algo, hex) = s.split_once(':').ok_or(DigestError::Malformed)?;
        let algorithm = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            "" => return Err(DigestError::Malformed),
            other => return Err(DigestError::UnsupportedAlgorithm(other.to_owned())),
        };
        let expected = algorithm.hex_len();
        if hex.len() != expected || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::BadHex { expected });
        }
        Ok(Digest {
            text: s.to_owned(),
            algo_len: algo.len(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental hasher; cloneable so an upload's state can be kept between chunks.
#[derive(Clone)]
pub struct Hasher {
    algorithm: Algorithm,
    ctx: ring::digest::Context,
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        Hasher {
            algorithm,
            ctx: ring::digest::Context::new(algorithm.ring()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.ctx.update(bytes);
    }

    pub fn finish(self) -> Digest {
        let out = self.ctx.finish();
        let algo = self.algorithm.as_str();
        Digest {
            text: format!("{algo}:{}", hex::encode(out.as_ref())),
            algo_len: algo.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex().len(), 64);
        assert_eq!(Digest::sha256_of(b""), d);
        let d512 = Digest::of(Algorithm::Sha512, b"abc");
        assert!(d512.as_str().starts_with("sha512:ddaf35a193617aba"));
        assert_eq!(d512.as_str().parse::<Digest>().unwrap(), d512);
    }

    #[test]
    fn rejects_bad_digests() {
        for (input, err) in [
            ("sha256", DigestError::Malformed),
            (":abc", DigestError::Malformed),
            (
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                DigestError::UnsupportedAlgorithm("md5".into()),
            ),
            ("sha256:abc", DigestError::BadHex { expected: 64 }),
            (
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                DigestError::BadHex { expected: 64 },
            ),
            (
                "sha256:../../../../etc/passwd0000000000000000000000000000000000000000",
                DigestError::BadHex { expected: 64 },
            ),
        ] {
            assert_eq!(input.parse::<Digest>().unwrap_err(), err, "{input}");
        }
    }

    #[test]
    fn incremental_equals_whole() {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(b"hello ");
        let saved = h.clone();
        h.update(b"world");
        assert_eq!(h.finish(), Digest::sha256_of(b"hello world"));
        let mut again = saved;
        again.update(b"world");
        assert_eq!(again.finish(), Digest::sha256_of(b"hello world"));
    }
}
