package sqlstore

import "database/sql"

// SQLOf is db's database/sql handle, for tests (package sqlstore_test)
// that look at the rows behind the store.
func SQLOf(db *DB) *sql.DB { return db.sql.DB }
