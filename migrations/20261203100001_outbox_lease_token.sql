-- Each claimed hand-off carries a lease of its own: the claim sets a fresh token, and the worker
-- renews the row's lease with it before every call to the target and settles the row
-- (delivered, failed, retry) only while it still holds it. A worker whose lease ran out and
-- whose row another worker claimed can then neither extend that lease nor record an outcome
-- over the new holder's, and it stops before calling the target again. NULL when not claimed.
ALTER TABLE handoff_outbox ADD COLUMN lease_token uuid;
