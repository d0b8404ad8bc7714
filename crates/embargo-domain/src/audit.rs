//! The audit chain: how entries are hashed and how a chain is verified.
//!
//! Each entry's hash covers its own fields and the previous entry's hash, so altering,
//! removing or reordering any entry breaks every hash after it. The store appends entries
//! and keeps the head (last sequence number and hash) in a separate row, which also makes
//! truncation of the tail detectable.

use sha2::{Digest, Sha256};

/// The hash that precedes the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hashed content of one audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFields<'a> {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Time of the action, in Unix milliseconds.
    pub at_ms: i64,
    /// The actor's text form (see [`crate::Actor`]).
    pub actor: &'a str,
    /// What was done, such as `report.transition` or `report.read`.
    pub action: &'a str,
    /// What it was done to, such as `report:EMB-2026-1`.
    pub subject: &'a str,
    /// Non-confidential details (never report content).
    pub details: &'a str,
}

impl AuditFields<'_> {
    /// The entry's hash given the previous entry's hash (hex SHA-256).
    ///
    /// Every field is length-prefixed so that no two different entries encode alike.
    pub fn hash(&self, prev_hash: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"embargo-audit-v1");
        for field in [
            prev_hash.as_bytes(),
            &self.seq.to_be_bytes(),
            &self.at_ms.to_be_bytes(),
            self.actor.as_bytes(),
            self.action.as_bytes(),
            self.subject.as_bytes(),
            self.details.as_bytes(),
        ] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field);
        }
        hex::encode(hasher.finalize())
    }
}

/// A stored entry, as read back for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The row's own sequence number.
    pub seq: i64,
    /// Time in Unix milliseconds.
    pub at_ms: i64,
    /// Actor text.
    pub actor: String,
    /// Action name.
    pub action: String,
    /// Subject.
    pub subject: String,
    /// Details.
    pub details: String,
    /// The previous hash as recorded in this entry.
    pub prev_hash: String,
    /// This entry's recorded hash.
    pub hash: String,
}

impl StoredEntry {
    /// The hashed fields of this entry.
    pub fn fields(&self) -> AuditFields<'_> {
        AuditFields {
            seq: self.seq,
            at_ms: self.at_ms,
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            details: &self.details,
        }
    }
}

/// The first problem found in a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// An entry's sequence number is not the one expected at its position.
    #[error("audit entry {expected}: missing (entry {found} stands in its place); entries were removed or renumbered")]
    Gap {
        /// The sequence number expected at this position.
        expected: i64,
        /// The sequence number found.
        found: i64,
    },
    /// An entry does not point to the hash of the entry before it.
    #[error("audit entry {seq}: does not follow entry {}; entries were removed, inserted or reordered", seq - 1)]
    Broken {
        /// The entry.
        seq: i64,
    },
    /// An entry's content does not match its hash.
    #[error("audit entry {seq}: content does not match its hash; the entry was altered")]
    Altered {
        /// The entry.
        seq: i64,
    },
    /// The chain ends before the recorded head.
    #[error("audit chain ends at entry {last} but the head records entry {head}; entries were removed from the end")]
    Truncated {
        /// Last entry present.
        last: i64,
        /// Entry recorded in the head.
        head: i64,
    },
    /// The last entry's hash differs from the recorded head.
    #[error("audit entry {seq}: hash differs from the recorded head")]
    HeadMismatch {
        /// The last entry.
        seq: i64,
    },
    /// The head row is gone: someone deleted it from the database.
    #[error(
        "the audit head row is missing (audit_head has no row 1): it was deleted from the database, \
         which only tampering does; {entries} entries are present"
    )]
    HeadMissing {
        /// Entries present in the log.
        entries: i64,
    },
    /// The chain disagrees with a signed checkpoint exported earlier.
    #[error(
        "audit entry {seq}: {problem} (signed checkpoint of {signed_at}); the chain was truncated or rewritten \
         after that checkpoint"
    )]
    Checkpoint {
        /// The checkpoint's sequence number.
        seq: i64,
        /// What differs.
        problem: String,
        /// When the checkpoint was signed (RFC 3339).
        signed_at: String,
    },
}

/// Incremental verifier: feed entries in sequence order, then check the head.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { expected_seq: 1, prev_hash: GENESIS_HASH.to_owned() }
    }
}

impl ChainVerifier {
    /// Checks the next entry.
    pub fn push(&mut self, entry: &StoredEntry) -> Result<(), ChainError> {
        if entry.seq != self.expected_seq {
            return Err(ChainError::Gap { expected: self.expected_seq, found: entry.seq });
        }
        if entry.prev_hash != self.prev_hash {
            return Err(ChainError::Broken { seq: entry.seq });
        }
        if entry.fields().hash(&self.prev_hash) != entry.hash {
            return Err(ChainError::Altered { seq: entry.seq });
        }
        self.expected_seq += 1;
        self.prev_hash.clone_from(&entry.hash);
        Ok(())
    }

    /// Checks the end of the chain against the recorded head; returns the entry count.
    pub fn finish(self, head_seq: i64, head_hash: &str) -> Result<i64, ChainError> {
        let last = self.expected_seq - 1;
        if last < head_seq {
            return Err(ChainError::Truncated { last, head: head_seq });
        }
        if last > head_seq || self.prev_hash != head_hash {
            return Err(ChainError::HeadMismatch { seq: last });
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<StoredEntry> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let mut entry = StoredEntry {
                    seq,
                    at_ms: seq * 1000,
                    actor: "system:test".into(),
                    action: "report.read".into(),
                    subject: format!("report:EMB-2026-{seq}"),
                    details: String::new(),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                entry.hash = entry.fields().hash(&prev);
                prev.clone_from(&entry.hash);
                entry
            })
            .collect()
    }

    fn verify(entries: &[StoredEntry], head: (i64, &str)) -> Result<i64, ChainError> {
        let mut verifier = ChainVerifier::default();
        for entry in entries {
            verifier.push(entry)?;
        }
        verifier.finish(head.0, head.1)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let entries = chain(5);
        assert_eq!(verify(&entries, (5, &entries[4].hash.clone())), Ok(5));
        assert_eq!(verify(&[], (0, GENESIS_HASH)), Ok(0));
    }

    #[test]
    fn alteration_removal_reordering_and_truncation_are_named() {
        let entries = chain(5);
        let head = (5, entries[4].hash.clone());

        let mut altered = entries.clone();
        altered[2].details = "changed".into();
        assert_eq!(verify(&altered, (head.0, &head.1)), Err(ChainError::Altered { seq: 3 }));

        let mut removed = entries.clone();
        removed.remove(1);
        assert_eq!(verify(&removed, (head.0, &head.1)), Err(ChainError::Gap { expected: 2, found: 3 }));

        let mut reordered = entries.clone();
        reordered.swap(1, 2);
        (reordered[1].seq, reordered[2].seq) = (2, 3);
        assert_eq!(verify(&reordered, (head.0, &head.1)), Err(ChainError::Broken { seq: 2 }));

        assert_eq!(verify(&entries[..4], (head.0, &head.1)), Err(ChainError::Truncated { last: 4, head: 5 }));
    }
}
