//! The announcement channels against the fakes of `embargo_test_support::announce_fake` and
//! against real git repositories and a real Hugo build.

mod blog;
mod channels;

use embargo_announce::{Affected, Announcement, Outgoing};

/// An advisory written from hostile reporter text.
pub fn announcement() -> Announcement {
    Announcement {
        advisory_id: "EMB-2026-0001".into(),
        cve_ids: vec!["CVE-2026-12345".into()],
        title: "Heap overflow in the <b>parser</b> & friends".into(),
        summary: "A crafted *document* makes the parser write past its buffer.".into(),
        severity: Some("High".into()),
        cvss_score: Some(8.1),
        cvss_vector: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:N".into()),
        affected: vec![Affected {
            product: "widget".into(),
            release_line: "2.4".into(),
            affected: ">= 2.4.0, < 2.4.7".into(),
            fixed: Some("2.4.7".into()),
        }],
        workarounds: "Set parser.strict=true & block <script>alert(1)</script> {{< shortcode >}} until upgraded."
            .into(),
        url: "https://security.example.org/advisories/EMB-2026-0001".into(),
        credits: vec!["Ada <ada@example.org>".into()],
        references: vec![],
        published: "2026-12-05T14:00:00Z".parse().unwrap(),
    }
}

/// The message to post: `text` for the advisory's marker.
pub fn outgoing(text: &str, key: &str) -> Outgoing {
    Outgoing {
        marker: "EMB-2026-0001".into(),
        text: text.to_owned(),
        idempotency_key: key.to_owned(),
        at: "2026-12-05T14:00:00Z".parse().unwrap(),
    }
}
