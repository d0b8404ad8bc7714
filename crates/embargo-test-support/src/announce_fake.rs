//! Fake announcement services (feature `announce-fake`); see [`AnnounceFake`].
