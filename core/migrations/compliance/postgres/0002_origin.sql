-- Where a row came from: the main store that recorded it (`origin_source`, a random id kept in
-- that store's `secrets` table) and its compliance outbox id there. Unique, so a batch copied
-- twice (a crash between the compliance commit and the outbox delete, or two pool nodes
-- draining the same outbox) is archived once. NULL for rows appended directly. Not part of the
-- hash chain. Identical to ../sqlite/0002_origin.sql but for BIGINT.
ALTER TABLE compliance_events ADD COLUMN origin_source TEXT;
ALTER TABLE compliance_events ADD COLUMN origin_id BIGINT;
CREATE UNIQUE INDEX compliance_events_origin ON compliance_events (origin_source, origin_id);
