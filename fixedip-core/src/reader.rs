//! Reads back the records `#[fixed_egress]` embedded in a built function, so that `cargo fixedip`
//! learns what network a function needs from the very artifact it uploads.
//!
//! Three kinds of file are accepted: an ELF binary (what Lambda runs), a Mach-O binary (for people
//! building on macOS, universal binaries included), and a Lambda zip, whose `bootstrap` entry is read
//! as one of the former. Nothing is executed: the record is plain bytes in its own link section.

use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use object::read::macho::{FatArch, MachOFatFile32, MachOFatFile64};
use object::{BinaryFormat, FileKind, Object, ObjectSection};

use crate::record::{Record, RecordError, SECTION_ELF, SECTION_MACHO};

/// The entry of a Lambda zip that holds the executable of a `provided.al2023` function.
pub const ZIP_ENTRY: &str = "bootstrap";

/// Why the records of a file could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("cannot read {file}: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{file} is not a binary fixedip can read ({reason}): give it the executable cargo built \
         (an ELF or Mach-O file, e.g. target/lambda/<name>/bootstrap) or a Lambda zip holding `bootstrap`"
    )]
    NotABinary { file: PathBuf, reason: String },
    #[error("{file} looks like a zip but cannot be read ({source}): build the zip again")]
    DamagedZip {
        file: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error(
        "the zip {file} has no `bootstrap` entry (it holds: {}): a Lambda zip for the provided.al2023 \
         runtime must hold the executable as `bootstrap` at its top level",
        list_or_nothing(.entries)
    )]
    ZipWithoutBootstrap { file: PathBuf, entries: Vec<String> },
    #[error("the #[fixed_egress] record in {file} is damaged: {source}")]
    DamagedRecord {
        file: PathBuf,
        #[source]
        source: RecordError,
    },
    #[error(
        "no #[fixed_egress] in {file}: add #[fixed_egress] to the function that starts the Lambda runtime"
    )]
    NoRecord { file: PathBuf },
    #[error(
        "{file} has {} #[fixed_egress] functions: {}; a binary deploys as one Lambda function, keep one",
        count_in_words(.records.len()),
        list_functions(.records)
    )]
    SeveralRecords { file: PathBuf, records: Vec<Record> },
}

/// Every record in the binary or Lambda zip at `path`, in link order. An empty list means the
/// binary has no `#[fixed_egress]`; [`read_single`] turns that into an error.
pub fn read_records(path: &Path) -> Result<Vec<Record>, ReaderError> {
    let bytes = fs::read(path).map_err(|source| ReaderError::Io {
        file: path.to_owned(),
        source,
    })?;
    records_in(&bytes, path)
}

/// Like [`read_records`], for bytes already in memory; `name` is how errors refer to them.
pub fn read_records_from_bytes(bytes: &[u8], name: &str) -> Result<Vec<Record>, ReaderError> {
    records_in(bytes, Path::new(name))
}

/// The one record of the binary or Lambda zip at `path`: a binary deploys as one Lambda function,
/// so none or several are errors that name the functions found.
pub fn read_single(path: &Path) -> Result<Record, ReaderError> {
    exactly_one(read_records(path)?, path)
}

/// Like [`read_single`], for bytes already in memory; `name` is how errors refer to them.
pub fn read_single_from_bytes(bytes: &[u8], name: &str) -> Result<Record, ReaderError> {
    exactly_one(read_records_from_bytes(bytes, name)?, Path::new(name))
}

fn exactly_one(mut records: Vec<Record>, file: &Path) -> Result<Record, ReaderError> {
    match records.len() {
        0 => Err(ReaderError::NoRecord {
            file: file.to_owned(),
        }),
        1 => Ok(records.remove(0)),
        _ => Err(ReaderError::SeveralRecords {
            file: file.to_owned(),
            records,
        }),
    }
}

fn records_in(bytes: &[u8], file: &Path) -> Result<Vec<Record>, ReaderError> {
    if bytes.starts_with(b"PK") {
        let (bootstrap, inside) = bootstrap_of_zip(bytes, file)?;
        return records_in_binary(&bootstrap, &inside);
    }
    records_in_binary(bytes, file)
}

/// The bytes of the zip's `bootstrap`, and the name errors give it (`x.zip/bootstrap`).
fn bootstrap_of_zip(bytes: &[u8], file: &Path) -> Result<(Vec<u8>, PathBuf), ReaderError> {
    let damaged = |source| ReaderError::DamagedZip {
        file: file.to_owned(),
        source,
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(damaged)?;
    let Some(index) = archive.index_for_name(ZIP_ENTRY) else {
        let entries = archive
            .file_names_raw()
            .map(|n| String::from_utf8_lossy(n).into_owned());
        return Err(ReaderError::ZipWithoutBootstrap {
            file: file.to_owned(),
            entries: entries.collect(),
        });
    };
    let mut entry = archive.by_index(index).map_err(damaged)?;
    let mut bootstrap = Vec::with_capacity(entry.size().try_into().unwrap_or(0));
    entry
        .read_to_end(&mut bootstrap)
        .map_err(|e| damaged(zip::result::ZipError::Io(e)))?;
    Ok((bootstrap, file.join(ZIP_ENTRY)))
}

fn records_in_binary(bytes: &[u8], file: &Path) -> Result<Vec<Record>, ReaderError> {
    let not_a_binary = |reason: String| ReaderError::NotABinary {
        file: file.to_owned(),
        reason,
    };
    let slices = match FileKind::parse(bytes) {
        // A universal macOS binary holds one Mach-O file per architecture.
        Ok(FileKind::MachOFat32) => fat_slices(MachOFatFile32::parse(bytes), bytes),
        Ok(FileKind::MachOFat64) => fat_slices(MachOFatFile64::parse(bytes), bytes),
        Ok(_) => Ok(vec![bytes]),
        Err(e) => Err(e),
    }
    .map_err(|e| not_a_binary(e.to_string()))?;

    let mut records: Vec<Record> = Vec::new();
    for slice in slices {
        let binary = object::File::parse(slice).map_err(|e| not_a_binary(e.to_string()))?;
        for section in binary
            .sections()
            .filter(|s| is_record_section(binary.format(), s))
        {
            let contents = section.data().map_err(|e| not_a_binary(e.to_string()))?;
            let found =
                Record::parse_section(contents).map_err(|source| ReaderError::DamagedRecord {
                    file: file.to_owned(),
                    source,
                })?;
            // The slices of a universal binary carry the same records: count each function once.
            for record in found {
                if !records.contains(&record) {
                    records.push(record);
                }
            }
        }
    }
    Ok(records)
}

fn fat_slices<'data, Fat: FatArch>(
    fat: object::Result<object::read::macho::MachOFatFile<'data, Fat>>,
    bytes: &'data [u8],
) -> object::Result<Vec<&'data [u8]>> {
    fat?.arches().iter().map(|arch| arch.data(bytes)).collect()
}

fn is_record_section<'data>(format: BinaryFormat, section: &impl ObjectSection<'data>) -> bool {
    match format {
        BinaryFormat::MachO => {
            let (segment, name) = SECTION_MACHO.split_once(',').expect("segment,section");
            section.segment_name().ok().flatten() == Some(segment)
                && section.name().ok() == Some(name)
        }
        _ => section.name().ok() == Some(SECTION_ELF),
    }
}

fn count_in_words(n: usize) -> String {
    match n {
        2 => "two".into(),
        3 => "three".into(),
        n => n.to_string(),
    }
}

/// `a::main (src/main.rs:10) and b::run (src/b.rs:3)`.
fn list_functions(records: &[Record]) -> String {
    let named: Vec<String> = records
        .iter()
        .map(|r| format!("{} ({})", r.function, r.source))
        .collect();
    match named.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn list_or_nothing(entries: &[String]) -> String {
    if entries.is_empty() {
        "nothing".into()
    } else {
        entries.join(", ")
    }
}
