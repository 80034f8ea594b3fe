-- Releases record who changed their plan, artifacts and review
-- (releases.Release.Edits, in the release document), so that separation of
-- duties can refuse an editor the gate that approves their change. The
-- schema does not change; this migration's Go step (backfillReleaseEdits)
-- gives every release stored before it the edits its events recorded, in
-- the same transaction, so a release in flight keeps the rule.
SELECT 1;
