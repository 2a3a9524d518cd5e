-- Warm pool (issue 17): whether a sandbox was claimed from a warm pool.
ALTER TABLE sandboxes ADD COLUMN warm INTEGER NOT NULL DEFAULT 0;
