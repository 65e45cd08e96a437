// Schema migrations for the rasad SQLite database (format: docs/SCHEMA.md).
//
// PRAGMA user_version holds the number of the last migration applied. On
// Store::Open every migration with a higher version runs in its own
// transaction, which also sets user_version, so a crash mid-migration leaves
// the database at the previous version.
//
// Policy: migrations are append-only. Never edit, reorder or remove one that
// has shipped; fix mistakes with a new migration. Versions are 1, 2, 3, ...
// without gaps, in array order.
#pragma once

#include <vector>

namespace rasad {

struct Migration {
  int version;       // the user_version after this migration
  const char* name;  // short description, used in error messages
  const char* sql;   // one or more statements; no BEGIN/COMMIT
};

// All migrations, in order. The last one's version is the latest schema.
const std::vector<Migration>& Migrations();

}  // namespace rasad
