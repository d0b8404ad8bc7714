//! The PROXY protocol header in front of the SMTP listener
//! (`embargo_mail::proxy_protocol::read_header`): never panics, and reads the header and
//! nothing more — what is left is the rest of the input, and a header it accepts is at most
//! 107 bytes (version 1) or 16 + 1,024 (version 2).
#![no_main]

use std::sync::OnceLock;

use embargo_mail::proxy_protocol::read_header;
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let mut rest: &[u8] = data;
    let result = runtime().block_on(read_header(&mut rest));
    let consumed = data.len() - rest.len();
    assert_eq!(rest, &data[consumed..]);
    if result.is_ok() {
        assert!(consumed <= 16 + 1024, "a header of {consumed} bytes accepted");
        if data.starts_with(b"PROXY ") {
            assert!(consumed <= 107, "a version 1 header of {consumed} bytes accepted");
            assert!(data[..consumed].ends_with(b"\r\n"));
        }
    }
});
