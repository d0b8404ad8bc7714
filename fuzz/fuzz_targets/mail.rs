//! Mail intake: MIME parsing, PGP/MIME and inline PGP decryption with the instance key and
//! signature checks, as intake calls them (`parse_with_key`, which catches a panic and keeps
//! the raw text: libFuzzer's panic hook aborts first, so a panic still counts as a crash).
//! Must never panic, nor take long (libFuzzer's `-timeout`), nor grow without bound
//! (`-rss_limit_mb`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mail = embargo_mail::parse_with_key(data, Some(embargo_fuzz::key()));
    if let Some(pgp) = &mail.pgp {
        let _ = pgp.code();
    }
    // A message that mail-parser could not read keeps its bytes as text.
    if !mail.parsed {
        assert_eq!(mail.text, String::from_utf8_lossy(data));
    }
});
