//! TODO: read records from ELF, Mach-O and Lambda zips.
