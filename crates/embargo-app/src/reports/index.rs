//! The private search index and near-duplicate suggestions: the words and signatures the
//! `report.index` job writes, and the suggestions read back from them.

use embargo_domain::{Actor, ReferenceId, ReportId, ReportState, similarity};
use embargo_store::messages;
use embargo_store::reporters;
use embargo_store::reports::ReportRecord;
use embargo_store::{Tx, reports as sr};

use serde::{Deserialize, Serialize};

use super::{find, require_on, subject};
use crate::authz::{self, Permission};
use crate::context::Scored;
use crate::jobs::{self, Claim, Job, JobError};
use crate::{App, AppError, audit};

/// Words for the private search index: the distinct lower-cased runs of letters and digits
/// of 2 to 40 characters, at most 2,000 per text.
pub fn search_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| (2..=40).contains(&w.chars().count()))
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words.truncate(2000);
    words
}

/// Reads and prepares the index entries of new reports (`new_report`: title, text and the
/// reporter's address as search terms, and the near-duplicate signature) or of inbound
/// messages (`message`: the message's words), one entry per `(report, message, new_report)`
/// in order. Reads in the caller's snapshot, a few statements for the whole batch; the
/// `report.index` job ([`IndexJob`]) writes the result ([`sr::write_index`]) in a short write transaction.
pub(crate) async fn prepare_index_many(
    tx: &mut Tx,
    app: &App,
    items: &[(ReportId, i64, bool)],
) -> Result<Vec<sr::IndexRows>, AppError> {
    let ids: Vec<ReportId> = items.iter().map(|(report, _, _)| *report).collect();
    let reports = sr::get_many(tx, &ids).await?;
    let reporter_ids: Vec<i64> = reports.values().map(|r| r.reporter_id).collect();
    let reporters = reporters::get_many(tx, &reporter_ids).await?;
    let products = match reports.values().any(|r| r.product_id.is_some()) {
        true => embargo_store::products::list(tx).await?,
        false => Vec::new(),
    };
    enum Source {
        Report(Box<ReportRecord>, String, Option<String>),
        Message(ReportId, String),
    }
    let mut sources = Vec::with_capacity(items.len());
    for &(report, message, new_report) in items {
        let record = reports.get(&report).cloned().ok_or_else(|| AppError::NotFound(format!("report {}", report.0)))?;
        if new_report {
            let email = reporters
                .get(&record.reporter_id)
                .map(|r| r.email.clone())
                .ok_or_else(|| AppError::NotFound(format!("the reporter of {}", record.reference)))?;
            let product = products.iter().find(|p| Some(p.id) == record.product_id).map(|p| p.name.clone());
            sources.push(Source::Report(Box::new(record), email, product));
        } else {
            let found = messages::get(tx, report, message)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("message {message} of {}", record.reference)))?;
            sources.push(Source::Message(report, found.body));
        }
    }
    // Hashing hundreds of words and computing signatures is CPU work: off the async
    // threads, which serve SMTP sessions and intake's commits meanwhile.
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        let keys = store.keys();
        let band_key = keys.derived_key(BAND_KEY_PURPOSE);
        sources
            .into_iter()
            .map(|source| match source {
                Source::Report(record, email, product) => {
                    let mut words = search_words(&record.title);
                    words.extend(search_words(&record.body));
                    words.extend(search_words(&email));
                    words.sort();
                    words.dedup();
                    let text = format!("{}\n{}", record.title, record.body);
                    let signature = similarity::signature(&text, product.as_deref());
                    let bands: Vec<String> =
                        similarity::bands(&signature, &band_key).iter().map(|band| format!("{band:016x}")).collect();
                    let similarity = Some((&record.reference, &signature.to_bytes()[..], &bands[..]));
                    sr::prepare_index(keys, record.id, &words, similarity)
                }
                Source::Message(report, body) => sr::prepare_index(keys, report, &search_words(&body), None),
            })
            .collect()
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("indexing failed: {e}")))
}

/// What the band key is derived for (see [`embargo_crypto::Keyring::derived_key`]).
const BAND_KEY_PURPOSE: &str = "near-duplicate bands";

/// A possible duplicate of a report.
#[derive(Debug, Clone)]
pub struct Similar {
    /// Its reference.
    pub reference: ReferenceId,
    /// Its title.
    pub title: String,
    /// Its state.
    pub state: ReportState,
    /// The TF-IDF cosine of the two reports' terms among the candidates compared, or for
    /// near-verbatim copies their plain cosine (see [`similarity::scores`]), 0.0 to 1.0.
    pub score: f64,
}

/// At most this many suggestions are shown.
pub const SIMILAR_SHOWN: usize = 5;

/// At most this many candidates (those sharing the most bands) are scored.
pub const SIMILAR_CANDIDATES: i64 = 64;

/// Per band of a report, at most this many reports received just before it, and as many
/// received just after it, are read as candidates: a band every report of a scanner
/// campaign shares costs no more than a rare one (see
/// [`embargo_store::reports::similarity_candidates`]). Four with 64 bands (ADR 27), so that
/// a page reads at most 512 band rows, as with ADR 16's 32 bands and eight: measured with
/// eight, the report page of `bench/web.py` took twice to four times as long.
pub const SIMILAR_PER_BAND: i64 = 4;

/// Reports that look like near-duplicates of this one: sharing at least one band, not
/// already linked as duplicates, scored at or above [`similarity::SUGGEST_THRESHOLD`], best
/// first, at most [`SIMILAR_SHOWN`], and only reports the actor may read (a report the
/// actor may not see is never suggested, so its existence does not leak). Shows titles,
/// so each suggestion is audited as a read of that report.
pub async fn similar(app: &App, actor: &Actor, reference: &ReferenceId) -> Result<Vec<Similar>, AppError> {
    Ok(similar_counted(app, actor, reference).await?.0)
}

/// [`similar`], and what finding the suggestions read: at most [`SIMILAR_PER_BAND`] × 2
/// band rows per band and [`SIMILAR_CANDIDATES`] signatures, whatever the corpus, and
/// nothing when the suggestions scored before still hold (see `App::similar`).
pub async fn similar_counted(
    app: &App,
    actor: &Actor,
    reference: &ReferenceId,
) -> Result<(Vec<Similar>, sr::CandidateWork), AppError> {
    let mut tx = app.store.snapshot().await?;
    let report = find(&mut tx, reference).await?;
    require_on(&mut tx, actor, Permission::ReadReport.on(report.id), reference).await?;
    let (shown, work) = similar_in(&mut tx, app, actor, &report).await?;
    tx.rollback().await?;
    let reads = similar_reads(&shown);
    audit::record_reads(
        app,
        actor,
        SIMILAR_ACTION,
        &reads.iter().map(|(subject, details)| (subject.as_str(), details.as_str())).collect::<Vec<_>>(),
    )
    .await?;
    Ok((shown, work))
}

/// The audit action of a suggestion shown.
pub(super) const SIMILAR_ACTION: &str = "report.similar";

/// The audit entries of suggestions shown, `(subject, details)`: each suggestion's title
/// was read, so it is on record under that report. The details name neither report, so a
/// trail never shows anyone a reference they may not read.
pub(super) fn similar_reads(shown: &[Similar]) -> Vec<(String, String)> {
    shown.iter().map(|s| (subject(&s.reference), format!("score={:.2}", s.score))).collect()
}

/// [`similar_counted`] for a report the actor may read, in the caller's snapshot; the
/// caller records the reads ([`similar_reads`]). The scoring is kept (`App::similar`) and
/// used again while the snapshot's index generation is the one it was scored at, so that it
/// is exactly what scoring anew would give; the need-to-know check is made on every call.
pub(super) async fn similar_in(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    report: &ReportRecord,
) -> Result<(Vec<Similar>, sr::CandidateWork), AppError> {
    let read = sr::similarity_and_generation(tx, report.id).await?;
    similar_with(tx, app, actor, report, read).await
}

/// [`similar_in`] with the report's signature and the similarity generation already read in
/// the caller's snapshot ([`sr::similarity_and_generation`] or [`sr::get_for_page`]).
pub(super) async fn similar_with(
    tx: &mut Tx,
    app: &App,
    actor: &Actor,
    report: &ReportRecord,
    (own, generation): (Option<Vec<u8>>, i64),
) -> Result<(Vec<Similar>, sr::CandidateWork), AppError> {
    let Some(own) = own.and_then(|bytes| similarity::Signature::from_bytes(&bytes).ok()) else {
        // Not indexed yet (or by an older signature version, until `report.similarity_reindex`
        // has re-indexed it): nothing to compare.
        return Ok((Vec::new(), sr::CandidateWork::default()));
    };
    let cached = app.similar.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(report.id, generation);
    let (scored, work) = match cached {
        // Kept: nothing of the band index or the signatures is read.
        Some(scored) => (scored, sr::CandidateWork::default()),
        None => {
            let scored = score(tx, report, &own, generation).await?;
            app.similar.lock().unwrap_or_else(std::sync::PoisonError::into_inner).put(report.id, scored.clone());
            let work = scored.work;
            (scored, work)
        }
    };
    let mut allowed = Vec::new();
    for (score, id) in scored.ranked {
        if allowed.len() == SIMILAR_SHOWN {
            break;
        }
        // Need-to-know: the check comes before anything about the candidate is read.
        if authz::require(tx, actor, Permission::ReadReport.on(id)).await.is_err() {
            continue;
        }
        allowed.push((score, id));
    }
    // The suggestions shown are read in one statement, best first.
    let mut records = sr::get_many(tx, &allowed.iter().map(|(_, id)| *id).collect::<Vec<_>>()).await?;
    let shown: Vec<Similar> = allowed
        .into_iter()
        .filter_map(|(score, id)| {
            records.remove(&id).map(|other| Similar {
                reference: other.reference,
                title: other.title,
                state: other.state,
                score,
            })
        })
        .collect();
    Ok((shown, work))
}

/// Scores a report's candidates: those at or above the threshold, best first.
async fn score(
    tx: &mut Tx,
    report: &ReportRecord,
    own: &similarity::Signature,
    generation: i64,
) -> Result<Scored, AppError> {
    let (candidates, work) = sr::similarity_candidates(tx, report.id, SIMILAR_PER_BAND, SIMILAR_CANDIDATES).await?;
    metrics::histogram!("embargo_similarity_band_rows").record(work.band_rows as f64);
    // Scored together: the IDF of each term comes from this report and its candidates (ADR 27).
    let parsed: Vec<(sr::Candidate, similarity::Signature)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let theirs = similarity::Signature::from_bytes(&candidate.signature).ok()?;
            Some((candidate, theirs))
        })
        .collect();
    let theirs: Vec<&similarity::Signature> = parsed.iter().map(|(_, signature)| signature).collect();
    let scores = similarity::scores(own, &theirs);
    let mut ranked: Vec<(f64, ReportId)> = parsed
        .into_iter()
        .zip(scores)
        .filter(|(_, score)| *score >= similarity::SUGGEST_THRESHOLD)
        .map(|((candidate, _), score)| (score, candidate.id))
        .collect();
    ranked.sort_by(|(a, x), (b, y)| b.total_cmp(a).then(x.0.cmp(&y.0)));
    Ok(Scored { generation, ranked, work })
}

/// The `report.index` job: indexes a new report or an inbound message (the blind search
/// terms and, for a report, the near-duplicate signature and its band keys). Identifiers
/// only: the words are read from the sealed report and message when the job runs. Batched:
/// a batch is read in a snapshot, computed off the async threads, and written with the
/// completion of all its jobs in one short transaction; if that fails, each job is run on
/// its own.
#[derive(Debug, Serialize, Deserialize)]
pub struct IndexJob {
    report: i64,
    message: i64,
    /// Whether the report itself is new: index its title and reporter and compute its
    /// signature, not only the message.
    new_report: bool,
}

impl IndexJob {
    /// The indexing of report `report` (when `new_report`) or of its inbound message
    /// `message`; once per (report, message).
    pub(crate) fn new(report: ReportId, message: i64, new_report: bool) -> Self {
        Self { report: report.0, message, new_report }
    }
}

impl Job for IndexJob {
    const KIND: &'static str = "report.index";
    const BATCHED: bool = true;

    fn key(&self) -> Option<String> {
        Some(format!("index:{}:{}", self.report, self.message))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        index_in_one_transaction(app, &[(self, claim)]).await
    }

    /// A batch is written [`INDEX_WRITE_CHUNK`] jobs per transaction: the one SQLite writer
    /// is held for a short while at a time, so that a page's audit commit or an SMTP sender
    /// never waits behind a whole batch of a backlog being indexed. If a chunk fails, its
    /// jobs are run one by one.
    async fn run_batch(app: &App, jobs: Vec<(Self, Claim)>) -> Vec<Result<(), JobError>> {
        let mut outcomes = Vec::with_capacity(jobs.len());
        // Beside page reads or intake, smaller transactions: a page's audit commit waits for
        // at most one of them (ADR 32).
        let chunk_size = match app.foreground_busy(crate::jobs::INTAKE_BUSY_WINDOW) {
            true => INDEX_WRITE_CHUNK_BESIDE_FOREGROUND,
            false => INDEX_WRITE_CHUNK,
        };
        for chunk in jobs.chunks(chunk_size) {
            if chunk.len() > 1 {
                match index_in_one_transaction(app, chunk).await {
                    Ok(()) => {
                        outcomes.extend(chunk.iter().map(|_| Ok(())));
                        continue;
                    }
                    Err(err) => {
                        tracing::warn!(jobs = chunk.len(), error = %err, "index batch failed; running its jobs one by one")
                    }
                }
            }
            for job in chunk {
                outcomes.push(index_in_one_transaction(app, std::slice::from_ref(job)).await);
            }
        }
        outcomes
    }
}

/// Index entries are written this many reports (or messages) per write transaction, so
/// that a transaction holds the writer for a few milliseconds, not a whole batch's worth
/// (ADR 16).
const INDEX_WRITE_CHUNK: usize = 16;

/// [`INDEX_WRITE_CHUNK`] while someone waits in the foreground (a page read, mail intake).
const INDEX_WRITE_CHUNK_BESIDE_FOREGROUND: usize = 4;

/// Writes the index entries of `jobs` and completes them in one transaction (so that they
/// are written once, however often a job is claimed).
async fn index_in_one_transaction(app: &App, jobs: &[(IndexJob, Claim)]) -> Result<(), JobError> {
    // Read and compute outside the write lock; write in one short transaction.
    let items: Vec<(ReportId, i64, bool)> =
        jobs.iter().map(|(job, _)| (ReportId(job.report), job.message, job.new_report)).collect();
    let mut snapshot = app.store.snapshot().await?;
    let rows = match prepare_index_many(&mut snapshot, app, &items).await {
        Ok(rows) => rows,
        Err(AppError::NotFound(what)) => return Err(JobError::Permanent(format!("{what} does not exist"))),
        Err(err) => return Err(err.into()),
    };
    snapshot.rollback().await?;
    // Derived data, committed with the jobs' completion: a power cut can only lose both, and
    // the jobs run again. So the commit does not wait for the disk, nor hold the one SQLite
    // writer while it does (ADR 32).
    let mut tx = app.store.begin_unflushed().await?;
    sr::write_index(&mut tx, &rows).await?;
    let claims: Vec<Claim> = jobs.iter().map(|(_, claim)| claim.clone()).collect();
    jobs::complete_all(tx, &claims, app.now()).await
}

/// The `report.similarity_reindex` job: recomputes the near-duplicate signatures of reports
/// indexed by an older method ([`sr::similarity_stale`]), [`REINDEX_BATCH`] at a time, each
/// batch with the enqueueing of the next in the same transaction as its writes. A worker
/// enqueues the first when it starts if any report is stale ([`Job::on_worker_start`]), so
/// an upgraded instance re-indexes its reports in the background after its first start;
/// until then an old report is simply not suggested, nor shown suggestions.
#[derive(Debug, Serialize, Deserialize)]
pub struct SimilarityReindex {
    /// The first stale report when the job was enqueued: one job per batch, whoever enqueues it.
    first: i64,
}

/// Reports re-indexed per `report.similarity_reindex` job.
pub const REINDEX_BATCH: i64 = 64;

impl SimilarityReindex {
    /// The job for the next stale batch, if any report is stale.
    async fn next(tx: &mut Tx) -> Result<Option<Self>, AppError> {
        let stale = sr::similarity_stale(tx, similarity::SIGNATURE_VERSION, 1).await?;
        Ok(stale.first().map(|id| Self { first: id.0 }))
    }
}

impl Job for SimilarityReindex {
    const KIND: &'static str = "report.similarity_reindex";

    fn key(&self) -> Option<String> {
        Some(format!("similarity.reindex:v{}:{}", similarity::SIGNATURE_VERSION, self.first))
    }

    async fn run(self, app: &App, claim: Claim) -> Result<(), JobError> {
        let mut snapshot = app.store.snapshot().await?;
        let stale = sr::similarity_stale(&mut snapshot, similarity::SIGNATURE_VERSION, REINDEX_BATCH).await?;
        let items: Vec<(ReportId, i64, bool)> = stale.iter().map(|id| (*id, 0, true)).collect();
        let rows = match prepare_index_many(&mut snapshot, app, &items).await {
            Ok(rows) => rows,
            Err(AppError::NotFound(what)) => return Err(JobError::Permanent(format!("{what} does not exist"))),
            Err(err) => return Err(err.into()),
        };
        snapshot.rollback().await?;
        let mut tx = app.store.begin().await?;
        sr::write_index(&mut tx, &rows).await?;
        if let Some(next) = Self::next(&mut tx).await? {
            jobs::enqueue(&mut tx, app, &next).await?;
        }
        metrics::counter!("embargo_similarity_reindexed_total").increment(rows.len() as u64);
        claim.complete(tx, app.now()).await
    }

    async fn on_worker_start(app: &App) -> Result<(), AppError> {
        // Looked up in a snapshot: the writer is taken only when there is something to do.
        let mut snapshot = app.store.snapshot().await?;
        let first = Self::next(&mut snapshot).await?;
        snapshot.rollback().await?;
        jobs::start_batches(app, first, "near-duplicate signatures of an older version: re-indexing them").await
    }
}
