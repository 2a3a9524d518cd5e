-- Key/value facts about this store, such as the server's instance id.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
