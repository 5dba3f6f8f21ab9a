//! Every size and count bound applied to licence input, in one place.
//!
//! Files are read with these bounds before any parsing, and parsed values
//! are checked against them, so a hostile or corrupted file cannot make the
//! reader allocate or loop without limit.

/// Largest licence file (armored text) accepted, in bytes.
pub const MAX_LICENSE_FILE: u64 = 64 * 1024;
/// Largest licence request file accepted, in bytes.
pub const MAX_REQUEST_FILE: u64 = 64 * 1024;
/// Largest machine-id file read, in bytes.
pub const MAX_MACHINE_ID_FILE: u64 = 4 * 1024;
/// Largest vendor serial ledger read, in bytes.
pub const MAX_LEDGER_FILE: u64 = 16 * 1024 * 1024;
/// Longest product id, feature name or limit name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest customer name, in characters.
pub const MAX_CUSTOMER_CHARS: usize = 256;
/// Longest installer version text in a request, in characters.
pub const MAX_INSTALLER_CHARS: usize = 256;
/// Most features in one licence.
pub const MAX_FEATURES: usize = 256;
/// Most limits in one licence.
pub const MAX_LIMITS: usize = 256;
/// Longest grace period, in days.
pub const MAX_GRACE_DAYS: u32 = 365;
/// Longest reason of a malformed-input error, in characters (it may quote
/// the input, as serde's messages do).
pub const MAX_REASON_CHARS: usize = 512;
/// Longest untrusted text quoted back in an error message, in characters.
pub const MAX_QUOTED_CHARS: usize = 64;

/// Reads at most `limit` bytes of the file at `path`; a larger file is
/// refused with [`LicenseError::TooLarge`](crate::error::LicenseError::TooLarge). Errors name the file.
pub fn read_bounded(
    path: &std::path::Path,
    limit: u64,
) -> Result<Vec<u8>, crate::error::LicenseError> {
    use airgap_format::regular_file::{read_regular, RegularFileError};
    let what = path.display().to_string();
    read_regular(path, limit, "a licence file").map_err(|e| match e {
        RegularFileError::TooLarge { .. } => crate::error::LicenseError::TooLarge { what, limit },
        RegularFileError::Io { source, .. } => crate::error::LicenseError::io(&what, source),
        e @ RegularFileError::NotRegular { .. } => crate::error::LicenseError::io(
            &what,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
        ),
    })
}

/// Largest serial and limit value: 2^53 - 1, the largest integer every JSON
/// parser (including those that read numbers as doubles) reads exactly.
pub const MAX_JSON_INTEGER: u64 = (1 << 53) - 1;
