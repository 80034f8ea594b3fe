-- Releases record who changed their plan, artifacts and review (see
-- migrations/sqlite/0008). The schema does not change; the Go step
-- (backfillReleaseEdits) fills the edits of releases stored before it.
SELECT 1;
