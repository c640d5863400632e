//! The storage key layout, in one place:
//!
//! ```text
//! blobs/<algorithm>/<first two hex digits>/<hex>     verified blob content
//! uploads/<upload uuid>/<start offset, 20 digits>    one stored part of an unfinished upload
//! uploads/<upload uuid>/blob                          its parts joined, about to become the blob
//! exportedlogs/<export uuid>.json                     a usage-logs export (deleted when its link expires)
//! <ACTION_LOG_ARCHIVE_PATH><first id>-<last id>.jsonl audit-log entries archived by rotation
//! ```
//!
//! Digests are validated ([`Digest`]) and upload ids are generated UUIDs checked by
//! [`is_upload_id`], so no key can contain `..` or a separator of the caller's choosing.

use crate::oci::Digest;

pub const BLOBS: &str = "blobs/";
pub const UPLOADS: &str = "uploads/";

/// A usage-logs export, by its generated id.
pub fn exported_logs(export_id: &uuid::Uuid) -> String {
    format!("exportedlogs/{export_id}.json")
}

/// A batch of archived audit-log entries under the configured (validated) archive prefix.
pub fn log_archive(prefix: &str, first_id: i64, last_id: i64) -> String {
    format!("{prefix}{first_id:020}-{last_id:020}.jsonl")
}

pub fn blob(digest: &Digest) -> String {
    let hex = digest.hex();
    format!(
        "blobs/{}/{}/{}",
        digest.algorithm().as_str(),
        &hex[..2],
        hex
    )
}

/// The digest whose content a key under `blobs/` holds (the inverse of [`blob`]).
pub fn blob_of_key(key: &str) -> Option<Digest> {
    let mut parts = key.strip_prefix(BLOBS)?.split('/');
    let (algorithm, prefix, hex) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !hex.starts_with(prefix) || prefix.len() != 2 {
        return None;
    }
    let digest: Digest = format!("{algorithm}:{hex}").parse().ok()?;
    (blob(&digest) == key).then_some(digest)
}

/// Where an upload's parts are joined before the result moves to its digest's key.
pub fn upload_staged(uuid: &str) -> String {
    format!("uploads/{uuid}/blob")
}

pub fn upload_dir(uuid: &str) -> String {
    format!("uploads/{uuid}/")
}

pub fn upload_part(uuid: &str, start: u64) -> String {
    format!("uploads/{uuid}/{start:020}")
}

/// Upload ids are lower-case hyphenated UUIDs.
pub fn is_upload_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// The upload id of a key under `uploads/`.
pub fn upload_of_key(key: &str) -> Option<&str> {
    key.strip_prefix(UPLOADS)?
        .split('/')
        .next()
        .filter(|u| is_upload_id(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let d = Digest::sha256_of(b"x");
        let key = blob(&d);
        assert!(key.starts_with(&format!("blobs/sha256/{}/", &d.hex()[..2])));
        assert!(key.ends_with(d.hex()));
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert!(is_upload_id(id));
        assert_eq!(
            upload_part(id, 42),
            format!("uploads/{id}/00000000000000000042")
        );
        assert_eq!(upload_of_key(&upload_part(id, 0)), Some(id));
        assert_eq!(upload_of_key(&upload_staged(id)), Some(id));
        assert_eq!(blob_of_key(&key), Some(d.clone()));
        for bad in [
            "blobs/sha256/zz/zz",
            "blobs/sha256/00/11",
            "uploads/x",
            "blobs/sha256/ab",
            &format!("{key}/extra"),
        ] {
            assert_eq!(blob_of_key(bad), None, "{bad}");
        }
        for bad in [
            "../../etc/passwd",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "x",
            "0f8fad5b/d9cb-469f-a165-70867728950e",
        ] {
            assert!(!is_upload_id(bad), "{bad}");
        }
    }
}
