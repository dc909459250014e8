//! Checks on a Lambda artifact before it is uploaded: a function that cannot start on Lambda is
//! better refused here than found in CloudWatch after the deploy.
//!
//! The artifact is a Lambda zip (with `bootstrap` at its root, as `provided.al2023` runs it) or the
//! bare `bootstrap` binary. The checks:
//!
//! | Code                       | When                                                                             |
//! |----------------------------|----------------------------------------------------------------------------------|
//! | `wrong-architecture`       | the ELF's machine is not the function's architecture (x86_64 / arm64)            |
//! | `glibc-too-new`            | the binary needs a GLIBC symbol version newer than `provided.al2023`'s (2.34)    |
//! | `zip-too-large`            | the zip is over the 50 MB limit of a direct upload                               |
//! | `unzipped-too-large`       | the unzipped content is over Lambda's 250 MB                                     |
//! | `missing-bootstrap`        | the zip has no `bootstrap` at its root                                           |
//! | `bootstrap-not-executable` | the zip records `bootstrap` without an execute permission                        |
//! | `not-linux-executable`     | `bootstrap` is not an ELF file (a macOS or Windows build, a script)              |
//! | `unreadable`               | the zip or the ELF is damaged                                                    |
//!
//! The GLIBC check reads the ELF's version needs (`.gnu.version_r`): the dynamic loader refuses to
//! start a binary if any version named there is missing from the system's glibc, whether or not the
//! symbol is ever called. A binary linked on a newer distribution (Debian 12, Ubuntu 22.04+) can pick
//! up such a version silently. A static (musl) binary has no version needs and always passes.

use std::fmt;
use std::io::{Cursor, Read};

use object::elf;
use object::read::elf::{FileHeader, Sym};
use object::{Endianness, FileKind};

use crate::settings::Architecture;

/// The glibc of Lambda's `provided.al2023` runtime (Amazon Linux 2023).
pub const AL2023_GLIBC: GlibcVersion = GlibcVersion {
    major: 2,
    minor: 34,
};

/// The limits an artifact is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest zip `CreateFunction` / `UpdateFunctionCode` accept inline.
    pub zip_bytes: u64,
    /// The largest unzipped deployment package.
    pub unzipped_bytes: u64,
    /// The newest glibc the runtime has.
    pub glibc: GlibcVersion,
}

impl Limits {
    /// Lambda's limits for a zip uploaded directly to a `provided.al2023` function.
    pub const LAMBDA: Limits = Limits {
        zip_bytes: 50 * 1024 * 1024,
        unzipped_bytes: 250 * 1024 * 1024,
        glibc: AL2023_GLIBC,
    };
}

/// A `GLIBC_major.minor` symbol version.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct GlibcVersion {
    pub major: u32,
    pub minor: u32,
}

impl GlibcVersion {
    /// Reads `GLIBC_2.35` (and `GLIBC_2.2.5`, whose patch level is ignored); `None` for anything else,
    /// such as `GLIBC_PRIVATE`.
    pub fn parse(version_name: &str) -> Option<GlibcVersion> {
        let mut numbers = version_name.strip_prefix("GLIBC_")?.split('.');
        let major = numbers.next()?.parse().ok()?;
        let minor = numbers.next()?.parse().ok()?;
        Some(GlibcVersion { major, minor })
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GLIBC_{}.{}", self.major, self.minor)
    }
}

/// An imported symbol and the GLIBC version it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct VersionedSymbol {
    pub name: String,
    pub version: GlibcVersion,
}

const HOW_TO_BUILD_FOR_LAMBDA: &str = "build for Lambda with `cargo lambda build --release` (it links against an old glibc with zig), or `cargo zigbuild --target x86_64-unknown-linux-gnu.2.34`, or on Amazon Linux 2023 / an older distribution, or for the static `*-unknown-linux-musl` target";

/// Why an artifact would not run on Lambda, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum ArtifactProblem {
    #[error(
        "the binary is for {found}, but the function runs on {expected}: build with `cargo lambda build --release{}` (or `--target {}`), or set the function's architecture to match",
        if *expected == Architecture::Arm64 { " --arm64" } else { "" },
        rust_target(*expected)
    )]
    WrongArchitecture {
        found: String,
        expected: Architecture,
    },
    #[error(
        "the binary needs {newest} (for {}), but provided.al2023 has glibc {}.{}: it would fail to start with \"version `{newest}' not found\"; {HOW_TO_BUILD_FOR_LAMBDA}",
        symbols_of(symbols, *newest),
        available.major,
        available.minor
    )]
    GlibcTooNew {
        newest: GlibcVersion,
        available: GlibcVersion,
        /// Every imported symbol bound to a version newer than `available`, newest first.
        symbols: Vec<VersionedSymbol>,
    },
    #[error(
        "the zip is {} bytes, over Lambda's {} byte limit for a direct upload: build with `--release` and `strip = true`, or upload it through S3",
        size,
        limit
    )]
    ZipTooLarge { size: u64, limit: u64 },
    #[error(
        "the zip unpacks to {} bytes, over Lambda's {} byte limit: strip the binary (`strip = true`, `lto = true`, `opt-level = \"z\"`) and leave other files out of the zip",
        size,
        limit
    )]
    UnzippedTooLarge { size: u64, limit: u64 },
    #[error("the zip has no `bootstrap` at its root (it holds: {}): a provided.al2023 function starts `bootstrap`; rename the binary or build with `cargo lambda build`", entries.join(", "))]
    MissingBootstrap { entries: Vec<String> },
    #[error("the zip stores `bootstrap` with mode {mode:o}, not executable: Lambda would fail with \"permission denied\"; `chmod 755 bootstrap` before zipping")]
    BootstrapNotExecutable { mode: u32 },
    #[error("`bootstrap` is {found}, not a Linux executable: {HOW_TO_BUILD_FOR_LAMBDA}")]
    NotLinuxExecutable { found: String },
    #[error("the artifact cannot be read ({reason}): rebuild it")]
    Unreadable { reason: String },
}

impl ArtifactProblem {
    /// A stable machine-readable code, as in the module's table.
    pub fn code(&self) -> &'static str {
        match self {
            ArtifactProblem::WrongArchitecture { .. } => "wrong-architecture",
            ArtifactProblem::GlibcTooNew { .. } => "glibc-too-new",
            ArtifactProblem::ZipTooLarge { .. } => "zip-too-large",
            ArtifactProblem::UnzippedTooLarge { .. } => "unzipped-too-large",
            ArtifactProblem::MissingBootstrap { .. } => "missing-bootstrap",
            ArtifactProblem::BootstrapNotExecutable { .. } => "bootstrap-not-executable",
            ArtifactProblem::NotLinuxExecutable { .. } => "not-linux-executable",
            ArtifactProblem::Unreadable { .. } => "unreadable",
        }
    }
}

fn rust_target(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::X86_64 => "x86_64-unknown-linux-gnu",
        Architecture::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

fn symbols_of(symbols: &[VersionedSymbol], version: GlibcVersion) -> String {
    let names: Vec<&str> = symbols
        .iter()
        .filter(|s| s.version == version)
        .map(|s| s.name.as_str())
        .collect();
    if names.is_empty() {
        "no imported symbol: the library requirement alone".to_owned()
    } else {
        names.join(", ")
    }
}

/// Checks a Lambda zip or a bare `bootstrap` binary against Lambda's limits. No problem: it can be
/// uploaded and will start.
pub fn check_artifact(zip_or_binary: &[u8], expected: Architecture) -> Vec<ArtifactProblem> {
    check_artifact_with(zip_or_binary, expected, &Limits::LAMBDA)
}

/// [`check_artifact`] with other limits (a runtime with another glibc, an upload through S3).
pub fn check_artifact_with(
    zip_or_binary: &[u8],
    expected: Architecture,
    limits: &Limits,
) -> Vec<ArtifactProblem> {
    let mut problems = Vec::new();
    if zip_or_binary.starts_with(b"PK\x03\x04") || zip_or_binary.starts_with(b"PK\x05\x06") {
        if let Some(bootstrap) = check_zip(zip_or_binary, limits, &mut problems) {
            check_binary(&bootstrap, expected, limits, &mut problems);
        }
    } else {
        let size = zip_or_binary.len() as u64;
        if size > limits.unzipped_bytes {
            problems.push(ArtifactProblem::UnzippedTooLarge {
                size,
                limit: limits.unzipped_bytes,
            });
        }
        check_binary(zip_or_binary, expected, limits, &mut problems);
    }
    problems
}

/// Checks the zip's sizes and returns its `bootstrap`, if it has a readable one.
fn check_zip(zip: &[u8], limits: &Limits, problems: &mut Vec<ArtifactProblem>) -> Option<Vec<u8>> {
    let size = zip.len() as u64;
    if size > limits.zip_bytes {
        problems.push(ArtifactProblem::ZipTooLarge {
            size,
            limit: limits.zip_bytes,
        });
    }
    let unreadable = |error: zip::result::ZipError| ArtifactProblem::Unreadable {
        reason: format!("zip: {error}"),
    };
    let mut archive = match zip::ZipArchive::new(Cursor::new(zip)) {
        Ok(archive) => archive,
        Err(error) => {
            problems.push(unreadable(error));
            return None;
        }
    };
    // The sizes the central directory declares: nothing is unpacked to add them up.
    let mut unzipped: u64 = 0;
    let mut entries = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        match archive.by_index_raw(index) {
            Ok(entry) => {
                unzipped = unzipped.saturating_add(entry.size());
                entries.push(String::from_utf8_lossy(entry.name_raw()).into_owned());
            }
            Err(error) => {
                problems.push(unreadable(error));
                return None;
            }
        }
    }
    if unzipped > limits.unzipped_bytes {
        problems.push(ArtifactProblem::UnzippedTooLarge {
            size: unzipped,
            limit: limits.unzipped_bytes,
        });
    }
    let mut bootstrap = match archive.by_name("bootstrap") {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            problems.push(ArtifactProblem::MissingBootstrap { entries });
            return None;
        }
        Err(error) => {
            problems.push(unreadable(error));
            return None;
        }
    };
    // A zip written on Windows records no Unix mode; Lambda then makes files executable itself.
    if let Some(mode) = bootstrap.unix_mode() {
        if mode & 0o111 == 0 {
            problems.push(ArtifactProblem::BootstrapNotExecutable {
                mode: mode & 0o7777,
            });
        }
    }
    let mut bytes = Vec::with_capacity(bootstrap.size().min(limits.unzipped_bytes) as usize);
    if let Err(error) = bootstrap.read_to_end(&mut bytes) {
        problems.push(ArtifactProblem::Unreadable {
            reason: format!("zip: bootstrap: {error}"),
        });
        return None;
    }
    Some(bytes)
}

fn check_binary(
    binary: &[u8],
    expected: Architecture,
    limits: &Limits,
    problems: &mut Vec<ArtifactProblem>,
) {
    match FileKind::parse(binary) {
        Ok(FileKind::Elf64) => {}
        Ok(FileKind::Elf32) => {
            problems.push(ArtifactProblem::WrongArchitecture {
                found: "a 32-bit ELF".into(),
                expected,
            });
            return;
        }
        Ok(FileKind::MachO64 | FileKind::MachO32 | FileKind::MachOFat32 | FileKind::MachOFat64) => {
            problems.push(ArtifactProblem::NotLinuxExecutable {
                found: "a Mach-O binary (built for macOS)".into(),
            });
            return;
        }
        Ok(other) => {
            problems.push(ArtifactProblem::NotLinuxExecutable {
                found: format!("a {other:?} file"),
            });
            return;
        }
        Err(_) => {
            let found = if binary.starts_with(b"#!") {
                "a script".to_owned()
            } else if binary.starts_with(b"MZ") {
                "a Windows executable".to_owned()
            } else {
                "not an executable format fixedip knows".to_owned()
            };
            problems.push(ArtifactProblem::NotLinuxExecutable { found });
            return;
        }
    }
    if let Err(error) = check_elf64(binary, expected, limits, problems) {
        problems.push(ArtifactProblem::Unreadable {
            reason: format!("ELF: {error}"),
        });
    }
}

fn check_elf64(
    binary: &[u8],
    expected: Architecture,
    limits: &Limits,
    problems: &mut Vec<ArtifactProblem>,
) -> object::read::Result<()> {
    let header = elf::FileHeader64::<Endianness>::parse(binary)?;
    let endian = header.endian()?;
    let machine = header.e_machine(endian);
    let found = match machine {
        elf::EM_X86_64 => Some(Architecture::X86_64),
        elf::EM_AARCH64 => Some(Architecture::Arm64),
        _ => None,
    };
    if found != Some(expected) {
        problems.push(ArtifactProblem::WrongArchitecture {
            found: match found {
                Some(architecture) => architecture.lambda_name().to_owned(),
                None => machine_name(machine),
            },
            expected,
        });
    }

    let sections = header.sections(endian, binary)?;
    // Every version the loader will demand, whether or not a symbol uses it.
    let mut newest: Option<GlibcVersion> = None;
    if let Some((mut needs, strings_index)) = sections.gnu_verneed(endian, binary)? {
        let strings = sections.strings(endian, binary, strings_index)?;
        while let Some((_, mut auxes)) = needs.next()? {
            while let Some(aux) = auxes.next()? {
                let name = String::from_utf8_lossy(aux.name(endian, strings)?).into_owned();
                if let Some(version) = GlibcVersion::parse(&name) {
                    newest = newest.max(Some(version));
                }
            }
        }
    }
    let Some(newest) = newest.filter(|v| *v > limits.glibc) else {
        return Ok(());
    };

    let mut symbols = Vec::new();
    if let Some(versions) = sections.versions(endian, binary)? {
        let dynamic = sections.symbols(endian, binary, elf::SHT_DYNSYM)?;
        for (index, symbol) in dynamic.enumerate() {
            if !symbol.is_undefined(endian) {
                continue;
            }
            let version_index = versions.version_index(endian, index).index();
            let Some(version) = versions.version(version_index)? else {
                continue;
            };
            let name = String::from_utf8_lossy(version.name());
            if let Some(version) = GlibcVersion::parse(&name).filter(|v| *v > limits.glibc) {
                symbols.push(VersionedSymbol {
                    name: String::from_utf8_lossy(dynamic.symbol_name(endian, symbol)?)
                        .into_owned(),
                    version,
                });
            }
        }
    }
    symbols.sort_by(|a, b| b.version.cmp(&a.version).then(a.name.cmp(&b.name)));
    symbols.dedup();
    problems.push(ArtifactProblem::GlibcTooNew {
        newest,
        available: limits.glibc,
        symbols,
    });
    Ok(())
}

fn machine_name(machine: elf::Machine) -> String {
    let name = match machine {
        elf::EM_386 => "x86 (32-bit)",
        elf::EM_ARM => "32-bit ARM",
        elf::EM_RISCV => "RISC-V",
        elf::EM_PPC64 => "POWER",
        elf::EM_S390 => "s390x",
        elf::EM_LOONGARCH => "LoongArch",
        _ => "another machine",
    };
    format!("{name} (ELF e_machine {machine})")
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;
    use std::process::Command;

    use object::write;
    use zip::write::SimpleFileOptions;

    use super::*;

    fn codes(problems: &[ArtifactProblem]) -> Vec<&'static str> {
        problems.iter().map(ArtifactProblem::code).collect()
    }

    /// The architecture this test binary was built for.
    const HOST: Architecture = if cfg!(target_arch = "aarch64") {
        Architecture::Arm64
    } else {
        Architecture::X86_64
    };

    fn other(architecture: Architecture) -> Architecture {
        match architecture {
            Architecture::X86_64 => Architecture::Arm64,
            Architecture::Arm64 => Architecture::X86_64,
        }
    }

    /// A small object file of the given format and machine, written in memory.
    fn object_file(format: object::BinaryFormat, machine: object::Architecture) -> Vec<u8> {
        let mut file = write::Object::new(format, machine, object::Endianness::Little);
        let text = file.section_id(write::StandardSection::Text);
        file.append_section_data(text, &[0xc3; 16], 16);
        file.write().unwrap()
    }

    fn elf_for(architecture: Architecture) -> Vec<u8> {
        let machine = match architecture {
            Architecture::X86_64 => object::Architecture::X86_64,
            Architecture::Arm64 => object::Architecture::Aarch64,
        };
        object_file(object::BinaryFormat::Elf, machine)
    }

    /// A linked ELF executable importing `imports` (symbol, GLIBC version) from libc.so.6, built
    /// in memory with the sections the dynamic loader reads: `.dynsym`, `.gnu.version` and
    /// `.gnu.version_r`. Independent of the glibc of the machine the tests run on.
    fn executable_importing(machine: elf::Machine, imports: &[(&str, &str)]) -> Vec<u8> {
        use object::build::elf::{Builder, SectionData, VersionData, VersionNeed};

        let mut builder = Builder::new(object::Endianness::Little, true);
        builder.header.e_type = elf::ET_EXEC;
        builder.header.e_machine = machine;
        let sections = [
            (".shstrtab", elf::SHT_STRTAB, SectionData::SectionString),
            (".dynsym", elf::SHT_DYNSYM, SectionData::DynamicSymbol),
            (".dynstr", elf::SHT_STRTAB, SectionData::DynamicString),
            (".gnu.version", elf::SHT_GNU_VERSYM, SectionData::GnuVersym),
            (
                ".gnu.version_r",
                elf::SHT_GNU_VERNEED,
                SectionData::GnuVerneed,
            ),
        ];
        let mut loaded = Vec::new();
        for (name, sh_type, data) in sections {
            let section = builder.sections.add();
            section.name = name.as_bytes().into();
            section.sh_type = sh_type;
            if name != ".shstrtab" {
                // The loader's sections are loaded (SHF_ALLOC), as a linker makes them.
                section.sh_flags = elf::SHF_ALLOC;
                loaded.push(section.id());
            }
            section.sh_addralign = 8;
            section.data = data;
        }
        let libc = builder.version_files.add(b"libc.so.6"[..].into());
        let mut versions: Vec<(&str, object::build::elf::VersionId)> = Vec::new();
        for (symbol_name, version_name) in imports {
            let version = match versions.iter().find(|(name, _)| name == version_name) {
                Some((_, id)) => *id,
                None => {
                    let id = builder.versions.add(VersionData::Need(VersionNeed {
                        file: libc,
                        name: version_name.as_bytes().into(),
                        flags: Default::default(),
                    }));
                    versions.push((version_name, id));
                    id
                }
            };
            let symbol = builder.dynamic_symbols.add();
            symbol.name = symbol_name.as_bytes().into();
            symbol.set_st_info(elf::STB_GLOBAL, elf::STT_FUNC);
            symbol.version = version;
        }
        builder.header.e_phoff = 0x40;
        builder.set_section_sizes();
        let segment = builder.segments.add();
        segment.p_type = elf::PT_LOAD;
        segment.p_flags = elf::PF_R;
        segment.p_align = 8;
        // The first page holds the headers; the sections follow it.
        segment.p_filesz = 0x1000;
        segment.p_memsz = 0x1000;
        for id in loaded {
            segment.append_section(builder.sections.get_mut(id));
        }
        let mut bytes = Vec::new();
        builder.write(&mut bytes).unwrap();
        bytes
    }

    /// A zip of (name, content, unix mode) entries, stored uncompressed.
    fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content, mode) in entries {
            let options = SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(content.len() > u32::MAX as usize)
                .unix_permissions(*mode);
            writer.start_file(*name, options).unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    /// Compiles a C program with the system's compiler against the system's glibc, the way a build
    /// on a newer distribution picks up a new symbol version without anyone asking for it.
    fn compile_c(name: &str, source: &str) -> Vec<u8> {
        let dir =
            std::env::temp_dir().join(format!("fixedip-artifact-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source_path = dir.join(format!("{name}.c"));
        let binary_path: PathBuf = dir.join(name);
        std::fs::write(&source_path, source).unwrap();
        let output = Command::new("cc")
            .arg("-o")
            .arg(&binary_path)
            .arg(&source_path)
            .output()
            .expect("this test needs a C compiler (`cc`), as Rust on Linux uses to link");
        assert!(
            output.status.success(),
            "cc failed (this test needs glibc 2.36 or newer headers for arc4random): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let binary = std::fs::read(&binary_path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        binary
    }

    #[test]
    fn glibc_versions_parse_and_order() {
        let v = |s| GlibcVersion::parse(s).unwrap();
        assert_eq!(v("GLIBC_2.34"), AL2023_GLIBC);
        assert_eq!(v("GLIBC_2.2.5"), GlibcVersion { major: 2, minor: 2 });
        assert!(v("GLIBC_2.35") > AL2023_GLIBC);
        assert!(v("GLIBC_2.4") < v("GLIBC_2.17"));
        assert_eq!(GlibcVersion::parse("GLIBC_PRIVATE"), None);
        assert_eq!(GlibcVersion::parse("GCC_3.0"), None);
        assert_eq!(v("GLIBC_2.36").to_string(), "GLIBC_2.36");
    }

    #[test]
    fn a_binary_built_here_against_glibc_2_36_is_refused() {
        // arc4random came in glibc 2.36; this machine has 2.36, provided.al2023 has 2.34.
        let binary = compile_c(
            "arc4random",
            "#include <stdlib.h>\n#include <stdio.h>\nint main(void) { printf(\"%u\\n\", arc4random()); return 0; }\n",
        );
        let problems = check_artifact(&binary, HOST);
        assert_eq!(codes(&problems), vec!["glibc-too-new"], "{problems:#?}");
        let ArtifactProblem::GlibcTooNew {
            newest,
            available,
            symbols,
        } = &problems[0]
        else {
            unreachable!()
        };
        assert_eq!(
            *newest,
            GlibcVersion {
                major: 2,
                minor: 36
            }
        );
        assert_eq!(*available, AL2023_GLIBC);
        assert_eq!(
            symbols,
            &vec![VersionedSymbol {
                name: "arc4random".into(),
                version: *newest
            }]
        );
        let message = problems[0].to_string();
        assert!(
            message.starts_with(
                "the binary needs GLIBC_2.36 (for arc4random), but provided.al2023 has glibc 2.34"
            ),
            "{message}"
        );
        assert!(message.contains("cargo lambda build"), "{message}");
        assert!(message.contains("-unknown-linux-musl"), "{message}");

        // The same binary on a runtime with glibc 2.36 is fine, and so it is inside a zip.
        let newer = Limits {
            glibc: GlibcVersion {
                major: 2,
                minor: 36,
            },
            ..Limits::LAMBDA
        };
        assert_eq!(check_artifact_with(&binary, HOST, &newer), vec![]);
        let zip = zip_of(&[("bootstrap", &binary, 0o755)]);
        assert_eq!(codes(&check_artifact(&zip, HOST)), vec!["glibc-too-new"]);
    }

    #[test]
    fn glibc_version_needs_newer_than_2_34_are_named_with_their_symbols() {
        let binary = executable_importing(
            elf::EM_AARCH64,
            &[
                ("__libc_start_main", "GLIBC_2.34"),
                ("malloc", "GLIBC_2.17"),
                ("epoll_pwait2", "GLIBC_2.35"),
                ("pidfd_open", "GLIBC_2.36"),
                ("arc4random", "GLIBC_2.36"),
                ("__tls_get_addr", "GLIBC_PRIVATE"),
            ],
        );
        let version = |minor| GlibcVersion { major: 2, minor };
        let problems = check_artifact(&binary, Architecture::Arm64);
        assert_eq!(
            problems,
            vec![ArtifactProblem::GlibcTooNew {
                newest: version(36),
                available: AL2023_GLIBC,
                symbols: vec![
                    VersionedSymbol {
                        name: "arc4random".into(),
                        version: version(36)
                    },
                    VersionedSymbol {
                        name: "pidfd_open".into(),
                        version: version(36)
                    },
                    VersionedSymbol {
                        name: "epoll_pwait2".into(),
                        version: version(35)
                    },
                ],
            }]
        );
        assert!(problems[0]
            .to_string()
            .starts_with("the binary needs GLIBC_2.36 (for arc4random, pidfd_open), but"));

        // Up to 2.34, as a binary built with `cargo lambda` or on Amazon Linux 2023 has.
        let binary = executable_importing(
            elf::EM_AARCH64,
            &[
                ("__libc_start_main", "GLIBC_2.34"),
                ("malloc", "GLIBC_2.17"),
            ],
        );
        assert_eq!(check_artifact(&binary, Architecture::Arm64), vec![]);
        // A static binary (musl) has no version needs at all.
        let binary = executable_importing(elf::EM_X86_64, &[]);
        assert_eq!(check_artifact(&binary, Architecture::X86_64), vec![]);
    }

    #[test]
    fn a_version_need_without_symbol_still_counts() {
        // The loader checks every entry of .gnu.version_r, used by a symbol or not.
        let mut binary = executable_importing(elf::EM_X86_64, &[("memcpy", "GLIBC_2.14")]);
        // Rename the version in place: same length, so the layout is unchanged.
        let at = binary.windows(10).position(|w| w == b"GLIBC_2.14").unwrap();
        binary[at..at + 10].copy_from_slice(b"GLIBC_2.38");
        let problems = check_artifact(&binary, Architecture::X86_64);
        assert!(
            matches!(&problems[..], [ArtifactProblem::GlibcTooNew { newest, .. }] if newest.minor == 38),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_binary_using_only_old_symbols_passes() {
        // printf and __libc_start_main: GLIBC_2.2.5 and GLIBC_2.34 on x86_64, both on AL2023.
        let binary = compile_c(
            "hello",
            "#include <stdio.h>\nint main(void) { printf(\"hello\\n\"); return 0; }\n",
        );
        assert_eq!(check_artifact(&binary, HOST), vec![]);
    }

    #[test]
    fn the_architecture_is_read_from_a_real_binary() {
        // This test's own executable, linked by rustc on this machine.
        let binary = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let wrong = check_artifact(&binary, other(HOST));
        assert!(
            matches!(
                &wrong[0],
                ArtifactProblem::WrongArchitecture { found, expected }
                    if found == HOST.lambda_name() && *expected == other(HOST)
            ),
            "{wrong:#?}"
        );
        assert!(!check_artifact(&binary, HOST)
            .iter()
            .any(|p| p.code() == "wrong-architecture"));
    }

    #[test]
    fn wrong_architecture() {
        let arm = elf_for(Architecture::Arm64);
        assert_eq!(check_artifact(&arm, Architecture::Arm64), vec![]);
        let problems = check_artifact(&arm, Architecture::X86_64);
        assert_eq!(
            problems,
            vec![ArtifactProblem::WrongArchitecture {
                found: "arm64".into(),
                expected: Architecture::X86_64
            }]
        );
        assert!(problems[0]
            .to_string()
            .contains("`--target x86_64-unknown-linux-gnu`"));
        let x86 = elf_for(Architecture::X86_64);
        let problems = check_artifact(&x86, Architecture::Arm64);
        assert_eq!(codes(&problems), vec!["wrong-architecture"]);
        assert!(problems[0]
            .to_string()
            .contains("`cargo lambda build --release --arm64`"));

        let riscv = object_file(object::BinaryFormat::Elf, object::Architecture::Riscv64);
        let problems = check_artifact(&riscv, Architecture::Arm64);
        assert_eq!(codes(&problems), vec!["wrong-architecture"]);
        assert!(
            problems[0]
                .to_string()
                .contains("RISC-V (ELF e_machine 243)"),
            "{}",
            problems[0]
        );

        let i386 = object_file(object::BinaryFormat::Elf, object::Architecture::I386);
        assert_eq!(
            check_artifact(&i386, Architecture::X86_64),
            vec![ArtifactProblem::WrongArchitecture {
                found: "a 32-bit ELF".into(),
                expected: Architecture::X86_64
            }]
        );
    }

    #[test]
    fn not_a_linux_executable() {
        let macho = object_file(object::BinaryFormat::MachO, object::Architecture::Aarch64);
        let zip = zip_of(&[("bootstrap", &macho, 0o755)]);
        assert_eq!(
            check_artifact(&zip, Architecture::Arm64),
            vec![ArtifactProblem::NotLinuxExecutable {
                found: "a Mach-O binary (built for macOS)".into()
            }]
        );
        assert_eq!(
            codes(&check_artifact(
                b"#!/bin/sh\necho hi\n",
                Architecture::Arm64
            )),
            vec!["not-linux-executable"]
        );
    }

    #[test]
    fn zip_over_the_direct_upload_limit() {
        let bootstrap = elf_for(Architecture::Arm64);
        // 51 MiB of incompressible-looking data, stored as it is.
        let assets: Vec<u8> = (0..51 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let zip = zip_of(&[
            ("bootstrap", &bootstrap, 0o755),
            ("assets.bin", &assets, 0o644),
        ]);
        let problems = check_artifact(&zip, Architecture::Arm64);
        assert_eq!(
            problems,
            vec![ArtifactProblem::ZipTooLarge {
                size: zip.len() as u64,
                limit: 52_428_800
            }]
        );
        assert!(problems[0].to_string().contains("upload it through S3"));
    }

    #[test]
    fn unzipped_over_the_limit() {
        let bootstrap = elf_for(Architecture::X86_64);
        let zip = zip_of(&[
            ("bootstrap", &bootstrap, 0o755),
            ("data", &[7; 4096], 0o644),
        ]);
        let small = Limits {
            unzipped_bytes: 4096,
            ..Limits::LAMBDA
        };
        assert_eq!(
            check_artifact_with(&zip, Architecture::X86_64, &small),
            vec![ArtifactProblem::UnzippedTooLarge {
                size: 4096 + bootstrap.len() as u64,
                limit: 4096
            }]
        );
        // A bare binary is held to the same limit.
        assert_eq!(
            codes(&check_artifact_with(
                &[0; 5000],
                Architecture::X86_64,
                &small
            )),
            vec!["unzipped-too-large", "not-linux-executable"]
        );
        assert_eq!(Limits::LAMBDA.unzipped_bytes, 262_144_000);
    }

    #[test]
    fn zip_without_bootstrap_or_with_it_not_executable() {
        let binary = elf_for(Architecture::X86_64);
        let zip = zip_of(&[("hello-egress", &binary, 0o755)]);
        let problems = check_artifact(&zip, Architecture::X86_64);
        assert_eq!(
            problems,
            vec![ArtifactProblem::MissingBootstrap {
                entries: vec!["hello-egress".into()]
            }]
        );
        // Only the root counts.
        let zip = zip_of(&[("target/bootstrap", &binary, 0o755)]);
        assert_eq!(
            codes(&check_artifact(&zip, Architecture::X86_64)),
            vec!["missing-bootstrap"]
        );

        let zip = zip_of(&[("bootstrap", &binary, 0o644)]);
        assert_eq!(
            check_artifact(&zip, Architecture::X86_64),
            vec![ArtifactProblem::BootstrapNotExecutable { mode: 0o644 }]
        );
    }

    #[test]
    fn a_damaged_zip_is_unreadable() {
        let mut zip = zip_of(&[("bootstrap", &elf_for(Architecture::X86_64), 0o755)]);
        zip.truncate(zip.len() / 2);
        assert_eq!(
            codes(&check_artifact(&zip, Architecture::X86_64)),
            vec!["unreadable"]
        );
    }

    #[test]
    fn problems_serialize_with_their_code() {
        let problem = ArtifactProblem::ZipTooLarge {
            size: 60_000_000,
            limit: 52_428_800,
        };
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["code"], problem.code());
        assert_eq!(json["size"], 60_000_000);
    }
}
