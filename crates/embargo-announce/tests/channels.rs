//! Slack, X, Mastodon and Bluesky × {ok, 429, 500, lost answer, timeout}: the right error,
//! and where the channel can be checked, reconciling finds the one post so nothing is posted
//! twice.

use std::time::Duration;

use embargo_announce::{AnyChannel, Bluesky, Channel, ChannelError, ChannelKind, Mastodon, Slack, X, render};
use embargo_test_support::announce_fake::{AnnounceFake, BLUESKY_HANDLE, Fault, Service};
use secrecy::SecretString;

use crate::{announcement, outgoing};

const TIMEOUT: Duration = Duration::from_secs(1);
const STALL: Duration = Duration::from_secs(3);

fn channel(fake: &AnnounceFake, service: Service) -> AnyChannel {
    match service {
        Service::Slack => {
            AnyChannel::Slack(Slack::with_timeout(SecretString::from(fake.slack_webhook_url()), TIMEOUT).unwrap())
        }
        Service::X => {
            AnyChannel::X(X::with_timeout(&fake.x_api_url(), SecretString::from(fake.x_token()), TIMEOUT).unwrap())
        }
        Service::Mastodon => AnyChannel::Mastodon(
            Mastodon::with_timeout(&fake.mastodon_url(), SecretString::from(fake.mastodon_token()), TIMEOUT).unwrap(),
        ),
        Service::Bluesky => AnyChannel::Bluesky(
            Bluesky::with_timeout(
                &fake.bluesky_url(),
                BLUESKY_HANDLE,
                SecretString::from(fake.bluesky_password()),
                TIMEOUT,
            )
            .unwrap(),
        ),
    }
}

fn kind(service: Service) -> ChannelKind {
    match service {
        Service::Slack => ChannelKind::Slack,
        Service::X => ChannelKind::X,
        Service::Mastodon => ChannelKind::Mastodon,
        Service::Bluesky => ChannelKind::Bluesky,
    }
}

const SERVICES: [Service; 4] = [Service::Slack, Service::X, Service::Mastodon, Service::Bluesky];

/// The caller's loop of ADR 14: reconcile, then post only when nothing was found.
async fn attempt(
    channel: &AnyChannel,
    out: &embargo_announce::Outgoing,
) -> Result<embargo_announce::Posted, ChannelError> {
    if let Some(found) = channel.reconcile(out).await? {
        return Ok(found);
    }
    channel.post(out).await
}

/// Runs one fault case on every channel; `check` sees the first error, then the caller
/// reconciles and (where it may) tries again.
async fn fault_case(fault: Fault, expect: impl Fn(ChannelKind, &ChannelError)) {
    let rendered = render::render(&announcement());
    for service in SERVICES {
        let fake = AnnounceFake::start();
        let channel = channel(&fake, service);
        let out = outgoing(rendered.text(kind(service)).unwrap(), "intent-7");
        fake.fail_next(service, fault, 1);
        let error = attempt(&channel, &out).await.expect_err("the fault shows");
        assert_eq!(error.channel(), kind(service));
        expect(kind(service), &error);
        let effect = matches!(fault, Fault::DropAfterEffect | Fault::StallAfterEffect(_));
        assert_eq!(fake.posts(service).len(), usize::from(effect), "{service:?} {fault:?}");
        if !channel.can_reconcile() {
            // Slack: a lost answer stops for a person; the caller does not retry.
            assert!(!error.is_retryable() || !error.may_have_happened());
            continue;
        }
        // The retry reconciles first: a post that happened is found, not made again.
        let posted = attempt(&channel, &out).await.unwrap_or_else(|e| panic!("{service:?} {fault:?}: {e}"));
        assert_eq!(fake.posts(service).len(), 1, "{service:?} {fault:?}: posted once");
        let again = channel.reconcile(&out).await.unwrap().expect("found by reconciling");
        assert_eq!(again.id, posted.id, "{service:?}");
    }
}

#[tokio::test]
async fn every_channel_posts_once_and_reconciling_finds_the_post() {
    let a = announcement();
    let rendered = render::render(&a);
    for service in SERVICES {
        let fake = AnnounceFake::start();
        let channel = channel(&fake, service);
        channel.check_credentials().await.unwrap_or_else(|e| panic!("{service:?}: {e}"));
        let out = outgoing(rendered.text(kind(service)).unwrap(), "intent-1");
        assert_eq!(channel.reconcile(&out).await.unwrap(), None, "{service:?}: nothing before");
        let posted = channel.post(&out).await.unwrap_or_else(|e| panic!("{service:?}: {e}"));
        let posts = fake.posts(service);
        assert_eq!(posts.len(), 1, "{service:?}");
        assert_eq!(posts[0], out.text, "{service:?}: the approved text, as it is");
        assert!(posts[0].contains("EMB-2026-0001"));
        if channel.can_reconcile() {
            let found = channel.reconcile(&out).await.unwrap().expect("found");
            assert_eq!(found, posted, "{service:?}");
            assert!(found.url.is_some());
        } else {
            assert_eq!(channel.reconcile(&out).await.unwrap(), None);
        }
        // Credentials travel as documented.
        let requests = fake.requests_of(service);
        let post_request = requests.iter().find(|r| r.method == "POST" && r.status / 100 == 2).unwrap();
        match service {
            Service::X => assert_eq!(post_request.headers["authorization"], format!("Bearer {}", fake.x_token())),
            Service::Mastodon => {
                assert_eq!(post_request.headers["authorization"], format!("Bearer {}", fake.mastodon_token()));
                assert_eq!(post_request.headers["idempotency-key"], "intent-1");
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_429_posts_nothing_and_says_when_to_retry() {
    fault_case(Fault::RateLimited { retry_after: 7 }, |_, error| {
        assert!(matches!(error, ChannelError::RateLimited { .. }), "{error:?}");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        assert!(error.is_retryable() && !error.may_have_happened());
    })
    .await;
}

#[tokio::test]
async fn a_500_is_temporary_except_on_slack_where_it_may_have_posted() {
    fault_case(Fault::ServerError, |kind, error| {
        if kind == ChannelKind::Slack {
            assert!(matches!(error, ChannelError::Lost { .. }), "{error:?}");
            assert!(!error.is_retryable());
        } else {
            assert!(matches!(error, ChannelError::Temporary { .. }), "{kind}: {error:?}");
            assert!(error.is_retryable());
        }
    })
    .await;
}

#[tokio::test]
async fn a_dropped_answer_is_lost_and_reconciled() {
    fault_case(Fault::DropAfterEffect, |kind, error| {
        assert!(matches!(error, ChannelError::Lost { .. }), "{kind}: {error:?}");
        assert!(error.may_have_happened());
        assert_eq!(error.is_retryable(), kind != ChannelKind::Slack);
    })
    .await;
}

#[tokio::test]
async fn a_timeout_after_the_post_is_lost_and_reconciled() {
    fault_case(Fault::StallAfterEffect(STALL), |kind, error| {
        assert!(matches!(error, ChannelError::Lost { .. }), "{kind}: {error:?}");
        assert!(error.to_string().contains("timed out"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn mastodon_honours_the_idempotency_key_without_reconciling() {
    let fake = AnnounceFake::start();
    let channel = channel(&fake, Service::Mastodon);
    let out = outgoing(&render::mastodon(&announcement()), "intent-9");
    fake.fail_next(Service::Mastodon, Fault::DropAfterEffect, 1);
    assert!(channel.post(&out).await.unwrap_err().may_have_happened());
    // A blind second post with the same key returns the first status.
    let first = channel.post(&out).await.unwrap();
    let second = channel.post(&out).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(fake.posts(Service::Mastodon).len(), 1);
    // Another key is another status.
    let other = outgoing(&format!("{} (update)", out.text), "intent-10");
    assert_ne!(channel.post(&other).await.unwrap().id, first.id);
    assert_eq!(fake.posts(Service::Mastodon).len(), 2);
}

#[tokio::test]
async fn x_refuses_a_duplicate_which_reconciling_finds_first() {
    let fake = AnnounceFake::start();
    let channel = channel(&fake, Service::X);
    let out = outgoing(&render::x(&announcement()), "intent-1");
    // Another advisory whose ID begins with ours is not ours.
    fake.add_post(Service::X, "EMB-2026-00010: another advisory");
    assert_eq!(channel.reconcile(&out).await.unwrap(), None);
    channel.post(&out).await.unwrap();
    let error = channel.post(&out).await.unwrap_err();
    assert!(matches!(error, ChannelError::Refused { status: Some(403), .. }), "{error:?}");
    assert!(error.to_string().contains("duplicate content"), "{error}");
    assert!(attempt(&channel, &out).await.is_ok());
    assert_eq!(fake.posts(Service::X).len(), 2);
}

#[tokio::test]
async fn reconciling_pages_through_older_posts() {
    let fake = AnnounceFake::start();
    let x = channel(&fake, Service::X);
    let mastodon = channel(&fake, Service::Mastodon);
    let x_out = outgoing(&render::x(&announcement()), "k");
    let m_out = outgoing(&render::mastodon(&announcement()), "k");
    x.post(&x_out).await.unwrap();
    mastodon.post(&m_out).await.unwrap();
    for n in 0..150 {
        fake.add_post(Service::X, &format!("unrelated {n}"));
        fake.add_post(Service::Mastodon, &format!("unrelated {n}"));
    }
    assert!(x.reconcile(&x_out).await.unwrap().is_some());
    assert!(mastodon.reconcile(&m_out).await.unwrap().is_some());
}

#[tokio::test]
async fn bluesky_uses_a_deterministic_record_key() {
    let fake = AnnounceFake::start();
    let channel = channel(&fake, Service::Bluesky);
    let out = outgoing(&render::bluesky(&announcement()), "intent-3");
    let posted = channel.post(&out).await.unwrap();
    let rkey = embargo_announce::record_key("intent-3", out.at);
    assert_eq!(posted.id, format!("at://did:plc:embargofake0000000000000/app.bsky.feed.post/{rkey}"));
    assert_eq!(posted.url.as_deref(), Some(format!("https://bsky.app/profile/{BLUESKY_HANDLE}/post/{rkey}").as_str()));
    let record = &fake.bluesky_records()[&rkey];
    assert_eq!(record["createdAt"], "2026-12-05T14:00:00.000Z");
    assert_eq!(record["facets"][0]["features"][0]["uri"], announcement().url);
    // Another intent's key is not found.
    assert_eq!(channel.reconcile(&outgoing(&out.text, "intent-4")).await.unwrap(), None);
    // Without a key, the marker is looked for in the newest posts.
    fake.add_post(Service::Bluesky, "EMB-2026-00010: another advisory");
    let by_marker = channel.reconcile(&outgoing(&out.text, "")).await.unwrap().expect("found by its marker");
    assert_eq!(by_marker, posted);
    let mut other = outgoing(&out.text, "");
    other.marker = "EMB-2026-0002".into();
    assert_eq!(channel.reconcile(&other).await.unwrap(), None);
    // Posting needs the key.
    assert!(matches!(channel.post(&outgoing(&out.text, "")).await, Err(ChannelError::Refused { status: None, .. })));
}

#[tokio::test]
async fn refusals_are_permanent_and_carry_the_service_message_not_the_credentials() {
    let fake = AnnounceFake::start();
    let rendered = render::render(&announcement());
    let wrong = SecretString::from("wrong-token".to_owned());
    let cases: Vec<(AnyChannel, ChannelKind)> = vec![
        (AnyChannel::X(X::new(&fake.x_api_url(), wrong.clone()).unwrap()), ChannelKind::X),
        (AnyChannel::Mastodon(Mastodon::new(&fake.mastodon_url(), wrong.clone()).unwrap()), ChannelKind::Mastodon),
        (
            AnyChannel::Bluesky(Bluesky::new(&fake.bluesky_url(), BLUESKY_HANDLE, wrong.clone()).unwrap()),
            ChannelKind::Bluesky,
        ),
    ];
    for (channel, kind) in cases {
        let error = channel.post(&outgoing(rendered.text(kind).unwrap(), "k")).await.unwrap_err();
        // Bluesky's session is a read: a refused session is refused, not lost.
        assert!(matches!(error, ChannelError::Refused { status: Some(401), .. }), "{kind}: {error:?}");
        assert!(!error.to_string().contains("wrong-token"));
        assert!(channel.check_credentials().await.is_err());
    }
    // A Slack webhook that does not exist: the service's word, without the URL.
    let url = fake.slack_webhook_url().replace("B0000FAKE", "B0000GONE");
    let slack = Slack::new(SecretString::from(url.clone())).unwrap();
    let error = slack.post(&outgoing(&rendered.slack, "k")).await.unwrap_err();
    assert_eq!(
        error,
        ChannelError::Refused { channel: ChannelKind::Slack, status: Some(404), message: "no_service".into() }
    );
    assert!(slack.check_credentials().await.is_err());
    assert!(fake.posts(Service::Slack).is_empty());
    // Nothing listens: nothing was sent, and the message has no secret.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let secret_url = format!("http://{closed}/services/T/B/very-secret-path");
    let error =
        Slack::new(SecretString::from(secret_url)).unwrap().post(&outgoing(&rendered.slack, "k")).await.unwrap_err();
    assert!(matches!(error, ChannelError::Temporary { .. }), "{error:?}");
    assert!(!error.to_string().contains("very-secret-path"), "{error}");
    assert!(!format!("{slack:?}").contains("B0000GONE"));
}

#[tokio::test]
async fn texts_without_the_marker_or_over_the_limit_are_refused_before_sending() {
    let fake = AnnounceFake::start();
    for service in SERVICES {
        let channel = channel(&fake, service);
        let error = channel.post(&outgoing("{\"text\": \"no marker here\"}", "k")).await.unwrap_err();
        assert!(matches!(error, ChannelError::Refused { status: None, .. }), "{error:?}");
        assert!(error.to_string().contains("marker"), "{error}");
    }
    let long = format!("EMB-2026-0001 {}", "a".repeat(300));
    for service in [Service::X, Service::Bluesky] {
        let error = channel(&fake, service).post(&outgoing(&long, "k")).await.unwrap_err();
        assert!(error.to_string().contains("limit"), "{error}");
    }
    assert!(fake.requests().iter().all(|r| r.method == "GET"
        || !r.target.contains("tweets")
            && !r.target.contains("statuses")
            && !r.target.contains("createRecord")
            && !r.target.contains("slack")));
    // Plain http:// only to loopback.
    assert!(X::new("http://api.x.example", SecretString::from("t".to_owned())).is_err());
}
