//! The Lambda zip: one `bootstrap` entry holding the executable, as the `provided.al2023` runtime
//! wants it.
//!
//! The zip is deterministic: a fixed timestamp (1980-01-01, the earliest a zip can hold), mode
//! 0o755, deflate at a fixed level, no extra fields. The same binary always gives the same bytes,
//! hence the same [`LambdaZip::code_sha256`], which is how deploy knows, by comparing with the
//! function's `CodeSha256`, that the code has not changed and must not be uploaded again.

use std::io::{Cursor, Write};
use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::CliError;

/// The name of the executable inside the zip.
pub const BOOTSTRAP: &str = fixedip_core::reader::ZIP_ENTRY;

/// A zip ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaZip {
    pub bytes: Vec<u8>,
    /// Base64 of the SHA-256 of `bytes`: what Lambda reports as `CodeSha256`.
    pub code_sha256: String,
}

impl LambdaZip {
    /// The zip of the executable at `binary`.
    pub fn from_binary(binary: &Path) -> Result<LambdaZip, CliError> {
        let executable = std::fs::read(binary).map_err(|source| CliError::Io {
            what: "read the executable",
            path: binary.to_owned(),
            source,
        })?;
        Ok(LambdaZip::from_executable(&executable))
    }

    /// The zip of an executable already in memory.
    pub fn from_executable(executable: &[u8]) -> LambdaZip {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(DateTime::DEFAULT)
            .unix_permissions(0o755);
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        // Writing to memory cannot fail but for running out of it.
        zip.start_file(BOOTSTRAP, options)
            .expect("zip entry in memory");
        zip.write_all(executable).expect("zip write in memory");
        let bytes = zip.finish().expect("zip finish in memory").into_inner();
        let code_sha256 = code_sha256(&bytes);
        LambdaZip { bytes, code_sha256 }
    }

    /// A zip built elsewhere (`deploy --zip`), uploaded as it is.
    pub fn from_zip_bytes(bytes: Vec<u8>) -> LambdaZip {
        let code_sha256 = code_sha256(&bytes);
        LambdaZip { bytes, code_sha256 }
    }

    /// Writes the zip to `path`, for people who upload it themselves or pass it to `--zip`.
    pub fn write_to(&self, path: &Path) -> Result<(), CliError> {
        std::fs::write(path, &self.bytes).map_err(|source| CliError::Io {
            what: "write the zip",
            path: path.to_owned(),
            source,
        })
    }
}

/// Lambda's `CodeSha256` of a zip: the standard base64 of its SHA-256.
pub fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn same_binary_same_bytes() {
        let binary = b"\x7fELF pretend executable".repeat(100);
        let first = LambdaZip::from_executable(&binary);
        let second = LambdaZip::from_executable(&binary);
        assert_eq!(first.bytes, second.bytes);
        assert_eq!(first.code_sha256, second.code_sha256);
    }

    #[test]
    fn different_binary_different_sha() {
        let a = LambdaZip::from_executable(b"\x7fELF one");
        let b = LambdaZip::from_executable(b"\x7fELF two");
        assert_ne!(a.code_sha256, b.code_sha256);
    }

    #[test]
    fn one_executable_bootstrap_entry() {
        let binary = b"\x7fELF the function".to_vec();
        let zip = LambdaZip::from_executable(&binary);
        let mut archive = zip::ZipArchive::new(Cursor::new(&zip.bytes)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_name("bootstrap").unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        assert_eq!(entry.compression(), CompressionMethod::Deflated);
        assert_eq!(entry.last_modified(), Some(DateTime::DEFAULT));
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).unwrap();
        assert_eq!(contents, binary);
    }

    #[test]
    fn sha_is_lambdas_encoding() {
        // SHA-256 of the empty input, base64 as Lambda prints CodeSha256
        // (`printf "" | openssl dgst -sha256 -binary | base64`).
        assert_eq!(
            code_sha256(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn the_reader_finds_the_record_in_the_zip() {
        // The reader opens zips by their `bootstrap` entry: a zip of a non-binary is refused
        // by content, not for a missing entry.
        let zip = LambdaZip::from_executable(b"not an executable");
        let error =
            fixedip_core::reader::read_records_from_bytes(&zip.bytes, "test.zip").unwrap_err();
        assert!(
            matches!(error, fixedip_core::reader::ReaderError::NotABinary { .. }),
            "{error}"
        );
    }
}
