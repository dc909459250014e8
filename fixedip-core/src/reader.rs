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
    Ok(records_in(&read_file(path)?, path)?.0)
}

/// Like [`read_records`], for bytes already in memory; `name` is how errors refer to them.
pub fn read_records_from_bytes(bytes: &[u8], name: &str) -> Result<Vec<Record>, ReaderError> {
    Ok(records_in(bytes, Path::new(name))?.0)
}

/// The one record of the binary or Lambda zip at `path`: a binary deploys as one Lambda function,
/// so none or several are errors that name the functions found.
pub fn read_single(path: &Path) -> Result<Record, ReaderError> {
    let (records, binary) = records_in(&read_file(path)?, path)?;
    exactly_one(records, binary)
}

/// Like [`read_single`], for bytes already in memory; `name` is how errors refer to them.
pub fn read_single_from_bytes(bytes: &[u8], name: &str) -> Result<Record, ReaderError> {
    let (records, binary) = records_in(bytes, Path::new(name))?;
    exactly_one(records, binary)
}

fn read_file(path: &Path) -> Result<Vec<u8>, ReaderError> {
    fs::read(path).map_err(|source| ReaderError::Io {
        file: path.to_owned(),
        source,
    })
}

fn exactly_one(mut records: Vec<Record>, binary: PathBuf) -> Result<Record, ReaderError> {
    match records.len() {
        0 => Err(ReaderError::NoRecord { file: binary }),
        1 => Ok(records.remove(0)),
        _ => Err(ReaderError::SeveralRecords {
            file: binary,
            records,
        }),
    }
}

/// The records, and the name of the binary they came from: `file` itself, or `file/bootstrap`
/// for a zip, so that errors point at the executable the user has to fix.
fn records_in(bytes: &[u8], file: &Path) -> Result<(Vec<Record>, PathBuf), ReaderError> {
    if bytes.starts_with(b"PK") {
        let (bootstrap, inside) = bootstrap_of_zip(bytes, file)?;
        return Ok((records_in_binary(&bootstrap, &inside)?, inside));
    }
    Ok((records_in_binary(bytes, file)?, file.to_owned()))
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
    for (index, slice) in slices.into_iter().enumerate() {
        let in_slice = records_in_slice(slice, file)?;
        if index == 0 {
            records = in_slice;
        } else {
            // The slices of a universal binary carry the same records: count each function once.
            for record in in_slice {
                if !records.contains(&record) {
                    records.push(record);
                }
            }
        }
    }
    Ok(records)
}

/// The records of one ELF or Mach-O file, in the order of its sections.
fn records_in_slice(bytes: &[u8], file: &Path) -> Result<Vec<Record>, ReaderError> {
    let not_a_binary = |reason: String| ReaderError::NotABinary {
        file: file.to_owned(),
        reason,
    };
    let binary = object::File::parse(bytes).map_err(|e| not_a_binary(e.to_string()))?;
    let mut records = Vec::new();
    for section in binary
        .sections()
        .filter(|s| is_record_section(binary.format(), s))
    {
        let contents = section.data().map_err(|e| not_a_binary(e.to_string()))?;
        records.extend(Record::parse_section(contents).map_err(|source| {
            ReaderError::DamagedRecord {
                file: file.to_owned(),
                source,
            }
        })?);
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use object::macho::{CpuType, CPU_TYPE_ARM64, CPU_TYPE_X86_64};
    use object::write;
    use object::{Architecture, Endianness, SectionKind};
    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;

    use super::*;
    use crate::requirements::{AllocationId, AzCount, EgressRequirements, StackName};

    fn record(function: &str, source: &str, azs: u64) -> Record {
        Record {
            package: "hello-egress".into(),
            function: function.into(),
            source: source.into(),
            requirements: EgressRequirements {
                stack: StackName::parse("payments").unwrap(),
                azs: AzCount::new(azs).unwrap(),
                ips: vec![AllocationId::parse("eipalloc-0123abcd").unwrap()],
                ..Default::default()
            },
        }
    }

    /// An object file in `format` whose `segment,section` holds `contents`, as a linker would leave
    /// it; `None` leaves the section out.
    fn object_file(
        format: BinaryFormat,
        architecture: Architecture,
        section: Option<(&str, &str)>,
        contents: &[u8],
    ) -> Vec<u8> {
        let mut file = write::Object::new(format, architecture, Endianness::Little);
        // Some ordinary data too, so the record is not the only thing in the file.
        let rodata = file.section_id(write::StandardSection::ReadOnlyData);
        file.append_section_data(rodata, b"unrelated constant data", 1);
        if let Some((segment, name)) = section {
            let id = file.add_section(segment.into(), name.into(), SectionKind::Data);
            file.append_section_data(id, contents, 1);
        }
        file.write().unwrap()
    }

    fn elf(contents: &[u8]) -> Vec<u8> {
        object_file(
            BinaryFormat::Elf,
            Architecture::X86_64,
            Some(("", SECTION_ELF)),
            contents,
        )
    }

    fn macho(architecture: Architecture, contents: &[u8]) -> Vec<u8> {
        let section = SECTION_MACHO.split_once(',').unwrap();
        object_file(BinaryFormat::MachO, architecture, Some(section), contents)
    }

    fn lambda_zip(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .unix_permissions(0o755);
        for (name, bytes) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn reads_the_record_of_an_elf_binary() {
        let main = record("hello_egress::main", "src/main.rs:12", 2);
        let records = read_records_from_bytes(&elf(main.encode().as_bytes()), "bootstrap").unwrap();
        assert_eq!(records, [main]);
    }

    #[test]
    fn reads_the_record_of_a_macho_binary() {
        let main = record("hello_egress::main", "src/main.rs:12", 3);
        let bytes = macho(Architecture::Aarch64, main.encode().as_bytes());
        assert_eq!(
            read_single_from_bytes(&bytes, "hello-egress").unwrap(),
            main
        );
    }

    #[test]
    fn macho_section_of_another_segment_is_not_the_record() {
        let main = record("hello_egress::main", "src/main.rs:12", 2);
        let bytes = object_file(
            BinaryFormat::MachO,
            Architecture::Aarch64,
            Some(("__TEXT", "__fixedip")),
            main.encode().as_bytes(),
        );
        assert_eq!(read_records_from_bytes(&bytes, "hello-egress").unwrap(), []);
    }

    /// A universal binary: a big-endian fat header, one `fat_arch` per slice, then the slices.
    fn universal(slices: &[(CpuType, &[u8])]) -> Vec<u8> {
        const ALIGN_LOG2: u32 = 12;
        let mut header = Vec::new();
        header.extend(0xcafe_babe_u32.to_be_bytes());
        header.extend((slices.len() as u32).to_be_bytes());
        let mut body = Vec::new();
        let mut offset = 1 << ALIGN_LOG2;
        for (cputype, slice) in slices {
            for field in [cputype.0, 0, offset, slice.len() as u32, ALIGN_LOG2] {
                header.extend(field.to_be_bytes());
            }
            body.resize(offset as usize - (1 << ALIGN_LOG2), 0);
            body.extend_from_slice(slice);
            offset = (((1 << ALIGN_LOG2) + body.len()) as u32).next_multiple_of(1 << ALIGN_LOG2);
        }
        header.resize(1 << ALIGN_LOG2, 0);
        header.extend(body);
        header
    }

    #[test]
    fn a_universal_binary_counts_each_function_once() {
        let main = record("hello_egress::main", "src/main.rs:12", 2);
        let x86 = macho(Architecture::X86_64, main.encode().as_bytes());
        let arm = macho(Architecture::Aarch64, main.encode().as_bytes());
        let bytes = universal(&[(CPU_TYPE_X86_64, &x86), (CPU_TYPE_ARM64, &arm)]);
        assert_eq!(
            read_records_from_bytes(&bytes, "hello-egress").unwrap(),
            [main]
        );
    }

    #[test]
    fn slices_with_different_functions_are_all_counted() {
        let (a, b) = (
            record("a::main", "src/main.rs:1", 2),
            record("b::main", "src/b.rs:1", 2),
        );
        let x86 = macho(Architecture::X86_64, a.encode().as_bytes());
        let arm = macho(Architecture::Aarch64, b.encode().as_bytes());
        let bytes = universal(&[(CPU_TYPE_X86_64, &x86), (CPU_TYPE_ARM64, &arm)]);
        let err = read_single_from_bytes(&bytes, "universal").unwrap_err();
        assert!(matches!(&err, ReaderError::SeveralRecords { records, .. } if records == &[a, b]));
    }

    #[test]
    fn the_same_record_twice_in_one_binary_is_not_hidden() {
        let main = record("m::main", "src/main.rs:1", 2);
        let section = format!("{}{}", main.encode(), main.encode());
        let records = read_records_from_bytes(&elf(section.as_bytes()), "bootstrap").unwrap();
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn reads_the_bootstrap_of_a_lambda_zip() {
        let main = record("hello_egress::main", "src/main.rs:12", 1);
        let binary = elf(main.encode().as_bytes());
        for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
            let zip = lambda_zip(&[("README", b"x"), ("bootstrap", &binary)], method);
            let records = read_records_from_bytes(&zip, "bootstrap.zip").unwrap();
            assert_eq!(records, std::slice::from_ref(&main), "{method:?}");
        }
    }

    #[test]
    fn a_zip_without_bootstrap_lists_what_it_holds() {
        let binary = elf(record("m::main", "src/main.rs:1", 2).encode().as_bytes());
        let zip = lambda_zip(
            &[("hello-egress", &binary), ("config.json", b"{}")],
            CompressionMethod::Deflated,
        );
        let err = read_records_from_bytes(&zip, "target/lambda/hello-egress.zip").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the zip target/lambda/hello-egress.zip has no `bootstrap` entry (it holds: hello-egress, \
             config.json): a Lambda zip for the provided.al2023 runtime must hold the executable as \
             `bootstrap` at its top level"
        );
    }

    #[test]
    fn a_damaged_zip_is_named() {
        let mut zip = lambda_zip(&[("bootstrap", b"abc")], CompressionMethod::Stored);
        zip.truncate(zip.len() - 10);
        let err = read_records_from_bytes(&zip, "f.zip").unwrap_err();
        assert!(matches!(err, ReaderError::DamagedZip { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("f.zip looks like a zip but cannot be read"),
            "{err}"
        );
    }

    #[test]
    fn errors_inside_a_zip_name_the_entry() {
        let zip = lambda_zip(&[("bootstrap", &elf(b""))], CompressionMethod::Deflated);
        let err = read_single_from_bytes(&zip, "bootstrap.zip").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no #[fixed_egress] in bootstrap.zip/bootstrap: add #[fixed_egress] to the function \
             that starts the Lambda runtime"
        );
    }

    #[test]
    fn no_record_is_a_clear_error() {
        let bytes = object_file(BinaryFormat::Elf, Architecture::X86_64, None, b"");
        let err = read_single_from_bytes(&bytes, "target/lambda/hello/bootstrap").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no #[fixed_egress] in target/lambda/hello/bootstrap: add #[fixed_egress] to the \
             function that starts the Lambda runtime"
        );
    }

    #[test]
    fn two_records_name_both_functions() {
        let (a, b) = (
            record("a::main", "src/main.rs:10", 2),
            record("b::run", "src/b.rs:3", 2),
        );
        // The linker lays the two statics out side by side, possibly with alignment padding.
        let section = format!("{}\0\0\0{}", a.encode(), b.encode());
        let err =
            read_single_from_bytes(&elf(section.as_bytes()), "target/x/bootstrap").unwrap_err();
        assert_eq!(
            err.to_string(),
            "target/x/bootstrap has two #[fixed_egress] functions: a::main (src/main.rs:10) and \
             b::run (src/b.rs:3); a binary deploys as one Lambda function, keep one"
        );
        let three = format!("{section}{}", record("c::go", "src/c.rs:7", 1).encode());
        let err = read_single_from_bytes(&elf(three.as_bytes()), "bin").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "bin has three #[fixed_egress] functions: a::main (src/main.rs:10), \
                 b::run (src/b.rs:3) and c::go (src/c.rs:7);"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_damaged_record_is_named_with_its_cause() {
        let err = read_records_from_bytes(&elf(b"FIXEDIP/1\nazs=9\n\n"), "bootstrap").unwrap_err();
        assert!(matches!(err, ReaderError::DamagedRecord { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the #[fixed_egress] record in bootstrap is damaged: the record holds an invalid \
             requirement: `azs` must be between 1 and 6, found 9"
        );
        let err = read_records_from_bytes(&elf(b"FIXEDIP/7\npackage=x\n\n"), "b").unwrap_err();
        assert!(err.to_string().contains("update cargo-fixedip"), "{err}");
    }

    #[test]
    fn other_files_are_not_binaries() {
        for bytes in [&b"#!/bin/sh\necho hello\n"[..], b"", b"\x7fELF garbage"] {
            let err = read_records_from_bytes(bytes, "script.sh").unwrap_err();
            assert!(matches!(err, ReaderError::NotABinary { .. }), "{err:?}");
            assert!(
                err.to_string().starts_with("script.sh is not a binary"),
                "{err}"
            );
        }
    }

    #[test]
    fn reads_files_and_names_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let main = record("hello_egress::main", "src/main.rs:12", 2);
        let path = dir.path().join("bootstrap");
        fs::write(&path, elf(main.encode().as_bytes())).unwrap();
        assert_eq!(read_single(&path).unwrap(), main);

        let missing = dir.path().join("nothing-here");
        let err = read_records(&missing).unwrap_err();
        assert!(matches!(err, ReaderError::Io { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }
}
