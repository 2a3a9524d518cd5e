-- A sandbox's labels (issue 12): a JSON object of string values, '{}' when none.
ALTER TABLE sandboxes ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
