//! The SMTP listener's command parser and DATA reader (`embargo_mail::smtp`), one session
//! per input over an in-memory connection: never a panic nor a hang, every reply a
//! well-formed CRLF-terminated line with a three-digit code, and a message delivered only
//! after a `DATA` the server accepted.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use embargo_mail::smtp::{BoxFuture, Delivery, DeliveryError, Envelope, MemoryBudget, SmtpSettings, session_in_memory};
use libfuzzer_sys::fuzz_target;

struct Sink;

impl Delivery for Sink {
    fn accepts(&self, address: &str) -> bool {
        address.eq_ignore_ascii_case("security@example.org")
    }

    fn deliver(&self, envelope: Envelope) -> BoxFuture<'_, Result<String, DeliveryError>> {
        Box::pin(async move {
            assert!(!envelope.rcpt_to.is_empty());
            assert!(envelope.data.len() <= 64 * 1024);
            Ok("queued".into())
        })
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let settings = SmtpSettings {
        hostname: "mx.example.org".into(),
        max_message_bytes: 64 * 1024,
        max_recipients: 5,
        max_connections_per_ip: 10,
        max_connections: 10,
        messages_per_minute_per_ip: 1000,
        idle_timeout: Duration::from_secs(5),
        tls: None,
        memory: MemoryBudget::new(1 << 20),
        proxy_protocol_from: None,
    };
    let answer = runtime().block_on(session_in_memory(settings, Arc::new(Sink), data));
    assert!(answer.starts_with(b"220 "), "{:?}", String::from_utf8_lossy(&answer));
    assert!(answer.ends_with(b"\r\n"), "{:?}", String::from_utf8_lossy(&answer));
    for line in answer.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.ends_with(b"\r"), "a bare LF in {:?}", String::from_utf8_lossy(&answer));
        assert!(
            line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit) && matches!(line[3], b' ' | b'-'),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
});
